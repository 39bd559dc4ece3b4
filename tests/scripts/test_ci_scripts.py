"""scripts/verify-secrets.sh and scripts/setup-ci-cd.sh against a stand-in `gh` on PATH.

`gh` talks to GitHub, which tests never reach; the stand-in answers `auth status`,
`repo view`, `secret list` from a file and records `secret set` (name and value) to a log.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

FAKE_GH = """#!/usr/bin/env bash
state="$FAKE_GH_DIR"
case "$1 $2" in
  "auth status") exit 0 ;;
  "repo view") echo "acme/movie-success" ;;
  "secret list")
    if [[ " $* " == *" --env "* ]]; then cat "$state/env_secrets" 2>/dev/null; exit 0; fi
    cat "$state/secrets" ;;
  "secret set") name=$3; value=$(cat); echo "$name=$value" >> "$state/set.log"
    echo "$name" >> "$state/secrets" ;;
  *) echo "unexpected gh $*" >&2; exit 9 ;;
esac
"""


@pytest.fixture
def gh(tmp_path: Path) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "gh").write_text(FAKE_GH)
    (bindir / "gh").chmod(0o755)
    (tmp_path / "secrets").write_text("")
    return tmp_path


def run(script: str, gh: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {
        "PATH": f"{gh / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "FAKE_GH_DIR": str(gh),
        "HOME": str(gh),
        **env,
    }
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / script)],
        env=full,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=60,
    )


def test_verify_secrets_names_each_missing_one_with_its_command(gh: Path) -> None:
    (gh / "secrets").write_text("TMDB_API_TOKEN\nAWS_ACCESS_KEY_ID\n")
    proc = run("verify-secrets.sh", gh)
    assert proc.returncode == 1
    assert "MISSING  AWS_SECRET_ACCESS_KEY" in proc.stdout
    assert "gh secret set AWS_SECRET_ACCESS_KEY" in proc.stdout
    assert "ok       TMDB_API_TOKEN" in proc.stdout
    assert "MISSING  TMDB_API_TOKEN" not in proc.stdout

    (gh / "secrets").write_text("TMDB_API_TOKEN\nAWS_ROLE_ARN\n")
    proc = run("verify-secrets.sh", gh)
    assert proc.returncode == 0, proc.stdout
    assert "MISSING" not in proc.stdout


def test_setup_sets_given_secrets_without_printing_them(gh: Path) -> None:
    proc = run(
        "setup-ci-cd.sh",
        gh,
        PATH=f"{gh / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
        f"{os.environ['PATH']}",
        TMDB_API_TOKEN="tmdb-secret-value",
        AWS_ROLE_ARN="arn:aws:iam::123:role/ci",
    )
    assert proc.returncode == 0, proc.stderr
    log = (gh / "set.log").read_text().splitlines()
    assert log == ["TMDB_API_TOKEN=tmdb-secret-value", "AWS_ROLE_ARN=arn:aws:iam::123:role/ci"]
    assert "tmdb-secret-value" not in proc.stdout + proc.stderr
    assert "skipped AWS_REGION" in proc.stdout
    assert "prod: required reviewers" in proc.stdout
