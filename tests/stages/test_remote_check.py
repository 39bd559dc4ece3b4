"""remote_check's pure parts: which credential is missing, and whether an endpoint answers."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from stages.remote_check import check_endpoint, missing_credentials


@pytest.fixture
def no_files(tmp_path: Path) -> dict[str, str]:
    return {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}


def test_nothing_set_names_both_variables(no_files: dict[str, str]) -> None:
    why = missing_credentials(no_files, {})
    assert why is not None
    assert why.startswith("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")


@pytest.mark.parametrize(
    ("env", "remote", "expected"),
    [
        ({"AWS_ACCESS_KEY_ID": "k"}, {}, "AWS_SECRET_ACCESS_KEY is not set (AWS_ACCESS_KEY_ID is)"),
        (
            {"AWS_SECRET_ACCESS_KEY": "s"},
            {},
            "AWS_ACCESS_KEY_ID is not set (AWS_SECRET_ACCESS_KEY is)",
        ),
        ({}, {"access_key_id": "k"}, "the remote has access_key_id but no secret_access_key"),
        ({"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}, {}, None),
        ({"AWS_PROFILE": "dev"}, {}, None),
        ({"AWS_WEB_IDENTITY_TOKEN_FILE": "/t"}, {}, None),
        ({}, {"profile": "dev"}, None),
        ({}, {"access_key_id": "k", "secret_access_key": "s"}, None),
    ],
)
def test_missing_credentials(
    no_files: dict[str, str], env: dict[str, str], remote: dict[str, str], expected: str | None
) -> None:
    assert missing_credentials({**no_files, **env}, remote) == expected


def test_credentials_file_counts(tmp_path: Path) -> None:
    creds = tmp_path / "credentials"
    creds.write_text("[default]\n")
    assert missing_credentials({"AWS_SHARED_CREDENTIALS_FILE": str(creds)}, {}) is None


def test_endpoint_open_closed_and_malformed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert check_endpoint(f"http://127.0.0.1:{port}", timeout=2) is None
    why = check_endpoint(f"http://127.0.0.1:{port}", timeout=2)
    assert why is not None
    assert why.startswith(f"cannot connect to endpoint http://127.0.0.1:{port}")
    assert check_endpoint("127.0.0.1:9000", timeout=2) == (
        "endpointurl '127.0.0.1:9000' is not an http(s) URL"
    )
