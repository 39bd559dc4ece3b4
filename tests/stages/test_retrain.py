"""The `retrain` command on real git + DVC repositories: params edit, repro, gate."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stages.compare.gate import EXIT_COMMIT, EXIT_FAILED, EXIT_GATED
from tests.conftest import mini_commit, mini_params
from tests.support import sh


def retrain(repo: Path, out: Path, date: str = "2012-06-30") -> subprocess.CompletedProcess[str]:
    return sh(
        "python",
        "-m",
        "stages.retrain",
        "--date",
        date,
        "--base",
        "main",
        "--out",
        out,
        cwd=repo,
        check=False,
    )


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("head", "code", "reason"),
    [
        (dict(quality=0.8), EXIT_COMMIT, None),
        (dict(quality=0.6), EXIT_GATED, "roc_auc is worse by 0.1"),
        (dict(quality=0.7, valid=False), EXIT_GATED, "data validation did not pass"),
        (dict(quality=0.7, fail=True), EXIT_FAILED, "`dvc repro` exited"),
    ],
    ids=["improved", "regressed", "invalid-data", "repro-fails"],
)
def test_retrain_on_two_commits(
    mini_repo: Path, tmp_path: Path, head: dict[str, Any], code: int, reason: str | None
) -> None:
    mini_commit(mini_repo, 0.7, "base: quality 0.7")
    sh("git", "checkout", "-q", "-b", "head", cwd=mini_repo)
    mini_params(mini_repo, **head)
    sh("git", "commit", "-q", "--allow-empty", "-am", "head params", cwd=mini_repo)
    lock_before = (mini_repo / "dvc.lock").read_text()

    proc = retrain(mini_repo, tmp_path / "out")
    assert proc.returncode == code, proc.stderr
    decision = json.loads((tmp_path / "out" / "decision.json").read_text())
    assert decision["exit_code"] == code
    assert decision["action"] == {0: "commit", 10: "review", 1: "failed"}[code]
    if reason is None:
        assert decision["reasons"] == []
    else:
        assert any(r.startswith(reason) for r in decision["reasons"]), decision["reasons"]
    md = (tmp_path / "out" / "decision.md").read_text()
    assert md.startswith("# Retrain")

    diff = sh("git", "diff", "-U0", "params.yaml", cwd=mini_repo).stdout
    changed = [ln for ln in diff.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    assert changed == [
        '-  release_date_lte: "2010-12-31"   # snapshot end',
        '+  release_date_lte: "2012-06-30"   # snapshot end',
    ]
    if code != EXIT_FAILED:
        lock = (mini_repo / "dvc.lock").read_text()
        assert lock != lock_before
        assert "2012-06-30" in lock
        metrics = json.loads((mini_repo / "models/metrics.json").read_text())
        assert metrics["rows"] == 112  # the new snapshot date reached the stage


@pytest.mark.e2e
def test_retrain_real_pipeline(reproduced_project: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(reproduced_project, repo, symlinks=True)
    proc = retrain(repo, tmp_path / "out", date="2009-12-31")
    assert proc.returncode == EXIT_COMMIT, proc.stderr
    decision = json.loads((tmp_path / "out" / "decision.json").read_text())
    assert decision["action"] == "commit"
    assert [g["metric"] for g in decision["guarded"]] == ["roc_auc", "pr_auc", "log_loss", "brier"]
    assert sh("git", "status", "--porcelain", cwd=repo).stdout.split() == [
        "M",
        "dvc.lock",
        "M",
        "params.yaml",
    ]
    assert sh("dvc", "status", "--json", cwd=repo).stdout.strip() == "{}"
