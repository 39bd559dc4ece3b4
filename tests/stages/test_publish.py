"""`publish` pushes with the real dvc CLI and reports failure as one line (and exit 2)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT, sh, tool_env


def dvc_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    sh("dvc", "init", "--no-scm", "-q", cwd=repo)
    (repo / "data.txt").write_text("hello\n")
    sh("dvc", "add", "-q", "data.txt", cwd=repo)
    return repo


def publish(repo: Path) -> tuple[int, str]:
    env = tool_env({"PYTHONPATH": str(ROOT)})
    proc = sh("python", "-m", "stages.publish", cwd=repo, check=False, env=env)
    return proc.returncode, proc.stderr


def test_pushes_to_the_default_remote(tmp_path: Path) -> None:
    repo = dvc_repo(tmp_path)
    remote = tmp_path / "remote"
    sh("dvc", "remote", "add", "-d", "store", remote, cwd=repo)
    code, err = publish(repo)
    assert code == 0, err
    assert any(p.is_file() for p in remote.rglob("*"))


def test_failed_push_is_one_line(tmp_path: Path) -> None:
    repo = dvc_repo(tmp_path)  # no remote configured
    code, err = publish(repo)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: dvc push failed (exit 1): ")
    assert "Traceback" not in err
