"""The S3 remote end to end: real dvc CLI against a real S3-protocol server (moto) on loopback."""

from __future__ import annotations

import shutil
import socket
import uuid
from pathlib import Path

import pytest

from tests.conftest import mini_commit
from tests.support import aws_env, make_bucket, sh, use_s3_remote

pytestmark = pytest.mark.e2e

OUTPUTS = (
    "data/raw/movies.jsonl",
    "data/raw/summary.json",
    "data/prepared/train.parquet",
    "data/prepared/test.parquet",
    "data/prepared/validation.json",
    "models/model.skops",
    "models/metrics.json",
    "models/plots/roc.csv",
    "models/plots/pr.csv",
    "models/plots/confusion.csv",
    "models/model_card.md",
)


def snapshot(repo: Path) -> dict[str, bytes]:
    return {p: (repo / p).read_bytes() for p in OUTPUTS}


def cache_files(repo: Path) -> dict[str, bytes]:
    cache = repo / ".dvc" / "cache"
    return {str(p.relative_to(cache)): p.read_bytes() for p in cache.rglob("*") if p.is_file()}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pushed(
    reproduced_project: Path, s3_server: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """A copy of the reproduced project whose outputs and run-cache are pushed to a new bucket."""
    repo = tmp_path_factory.mktemp("pushed") / "repo"
    shutil.copytree(reproduced_project, repo, symlinks=True)
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    make_bucket(s3_server, bucket)
    use_s3_remote(repo, s3_server, bucket)
    sh("python", "-m", "stages.remote_check", cwd=repo, env=aws_env())
    sh("dvc", "push", "--run-cache", cwd=repo, env=aws_env())
    return repo, bucket


def test_push_wipe_pull_is_byte_identical(pushed: tuple[Path, str], tmp_path: Path) -> None:
    src, _ = pushed
    repo = tmp_path / "repo"
    shutil.copytree(src, repo, symlinks=True)
    expected = snapshot(repo)
    shutil.rmtree(repo / ".dvc" / "cache")
    for p in OUTPUTS:
        (repo / p).unlink()
    assert sh("dvc", "status", cwd=repo).stdout.count("deleted") >= 1

    sh("dvc", "pull", cwd=repo, env=aws_env())
    assert snapshot(repo) == expected
    assert sh("dvc", "status", "--json", cwd=repo).stdout.strip() == "{}"


def test_repro_pull_on_fresh_clone_restores_every_stage_without_running(
    pushed: tuple[Path, str], s3_server: str, tmp_path: Path
) -> None:
    src, bucket = pushed
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", str(src), str(clone), cwd=tmp_path)
    use_s3_remote(clone, s3_server, bucket)

    proc = sh("dvc", "repro", "--pull", cwd=clone, env=aws_env())
    out = proc.stdout + proc.stderr
    assert "Running stage" not in out, out
    for stage in ("collect", "prepare", "train", "evaluate"):
        assert f"'{stage}'" in out
    assert snapshot(clone) == snapshot(src)
    assert sh("git", "status", "--porcelain", cwd=clone).stdout == ""
    assert sh("dvc", "status", "--json", cwd=clone).stdout.strip() == "{}"


def test_wrong_endpoint_fails_clearly_and_loses_nothing(
    pushed: tuple[Path, str], tmp_path: Path
) -> None:
    src, _ = pushed
    repo = tmp_path / "repo"
    shutil.copytree(src, repo, symlinks=True)
    bad = f"http://127.0.0.1:{closed_port()}"
    sh("dvc", "remote", "modify", "--local", "storage", "endpointurl", bad, cwd=repo)
    before, cache_before = snapshot(repo), cache_files(repo)

    check = sh("python", "-m", "stages.remote_check", cwd=repo, env=aws_env(), check=False)
    assert check.returncode == 2
    lines = check.stderr.strip().splitlines()
    assert lines[-1].startswith("error: DVC remote 'storage': cannot connect to endpoint " + bad)
    assert "endpointurl" in lines[-1]
    assert "Traceback" not in check.stderr

    push = sh("dvc", "push", cwd=repo, env=aws_env(AWS_MAX_ATTEMPTS="1"), check=False)
    assert push.returncode != 0
    assert snapshot(repo) == before
    assert cache_files(repo) == cache_before


def test_missing_credentials_named_and_nothing_lost(
    pushed: tuple[Path, str], tmp_path: Path
) -> None:
    src, _ = pushed
    repo = tmp_path / "repo"
    shutil.copytree(src, repo, symlinks=True)
    env = aws_env(HOME=str(tmp_path))
    del env["AWS_ACCESS_KEY_ID"]
    del env["AWS_SECRET_ACCESS_KEY"]
    before, cache_before = snapshot(repo), cache_files(repo)

    check = sh("python", "-m", "stages.remote_check", cwd=repo, env=env, check=False)
    assert check.returncode == 2
    last = check.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no AWS credentials for DVC remote 'storage'")
    assert "AWS_ACCESS_KEY_ID" in last
    assert "AWS_SECRET_ACCESS_KEY" in last

    only_key = sh(
        "python",
        "-m",
        "stages.remote_check",
        cwd=repo,
        env={**env, "AWS_ACCESS_KEY_ID": "testing"},
        check=False,
    )
    assert "AWS_SECRET_ACCESS_KEY is not set" in only_key.stderr

    push = sh("dvc", "push", cwd=repo, env=env, check=False)
    assert push.returncode != 0, push.stdout + push.stderr
    assert snapshot(repo) == before
    assert cache_files(repo) == cache_before


def test_placeholder_bucket_is_reported(project_repo: Path) -> None:
    check = sh("python", "-m", "stages.remote_check", cwd=project_repo, env=aws_env(), check=False)
    assert check.returncode == 2
    assert "placeholder s3://CHANGE-ME" in check.stderr
    assert "dvc remote modify --local storage url s3://BUCKET/PREFIX" in check.stderr


def test_report_reads_the_base_from_the_remote_on_a_fresh_clone(
    mini_repo: Path, s3_server: str, tmp_path: Path
) -> None:
    """The PR workflow's path: head restored by repro --pull, base read through DVC from S3."""
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    make_bucket(s3_server, bucket)
    sh("dvc", "remote", "add", "-d", "storage", "s3://CHANGE-ME-bucket/mini", cwd=mini_repo)
    use_s3_remote(mini_repo, s3_server, bucket)
    mini_commit(mini_repo, 0.70, "base")
    sh("dvc", "push", "--run-cache", cwd=mini_repo, env=aws_env())
    sh("git", "checkout", "-q", "-b", "feature", cwd=mini_repo)
    mini_commit(mini_repo, 0.80, "better")
    sh("dvc", "push", "--run-cache", cwd=mini_repo, env=aws_env())

    clone = tmp_path / "clone"
    sh("git", "clone", "-q", "--branch", "feature", str(mini_repo), str(clone), cwd=tmp_path)
    use_s3_remote(clone, s3_server, bucket)
    proc = sh("dvc", "repro", "--pull", cwd=clone, env=aws_env())
    assert "Running stage" not in proc.stdout + proc.stderr
    out = tmp_path / "report"
    sh("python", "-m", "stages.report", "--base", "main", "--out", out, cwd=clone, env=aws_env())
    md = (out / "report.md").read_text()
    # 0.7 is the base's metric: this clone has no cache of it, DVC read it from S3
    assert "| `roc_auc` | 0.7 | 0.8 | +0.1 | 🟢 better |" in md
