"""The retrain gate: params edit, decision rules, and the command on real git + DVC repos."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stages.core.cli import UserError
from stages.retrain import EXIT_COMMIT, EXIT_FAILED, EXIT_GATED, RetrainParams, decide
from stages.retrain import set_release_date_lte as set_lte
from tests.conftest import ROOT, mini_commit, mini_params, sh

PARAMS = RetrainParams(guarded_metrics=("roc_auc", "log_loss"), tolerance=0.01)


def test_date_edit_keeps_every_other_byte() -> None:
    text = (ROOT / "params.yaml").read_text()
    new = set_lte(text, dt.date(2026, 11, 28))
    old_lines, new_lines = text.splitlines(), new.splitlines()
    changed = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    assert len(changed) == 1
    assert changed[0][1].strip().startswith('release_date_lte: "2026-11-28"')
    assert set_lte(new, dt.date(2026, 11, 28)) == new


def test_date_edit_only_in_collect_and_keeps_comment() -> None:
    text = 'other:\n  release_date_lte: "x"\ncollect:\n  release_date_lte: 2010-01-01  # end\n'
    assert set_lte(text, dt.date(2011, 2, 3)) == (
        'other:\n  release_date_lte: "x"\ncollect:\n  release_date_lte: "2011-02-03"  # end\n'
    )
    with pytest.raises(UserError, match=r"collect.release_date_lte not found"):
        set_lte("collect:\n  source: x\n", dt.date(2011, 2, 3))


def test_decide_rules() -> None:
    ok = {"passed": True}
    base = {"roc_auc": 0.70, "log_loss": 0.50, "rows": 10}
    assert decide(ok, base, {**base, "rows": 12}, PARAMS).action == "commit"
    within = {"roc_auc": 0.695, "log_loss": 0.505, "rows": 10}
    assert decide(ok, base, within, PARAMS).action == "commit"
    better = {"roc_auc": 0.80, "log_loss": 0.40, "rows": 10}
    assert decide(ok, base, better, PARAMS).exit_code == EXIT_COMMIT

    worse = decide(ok, base, {"roc_auc": 0.70, "log_loss": 0.52, "rows": 10}, PARAMS)
    assert worse.exit_code == EXIT_GATED
    assert worse.reasons == (
        "log_loss is worse by 0.02 (0.5 -> 0.52), more than the tolerance 0.01",
    )
    assert decide({"passed": False}, base, base, PARAMS).reasons == (
        "data validation did not pass",
    )
    assert "the base has no metrics to compare with" in decide(ok, None, base, PARAMS).reasons
    with pytest.raises(UserError, match="direction is unknown"):
        decide(ok, base, base, RetrainParams(guarded_metrics=("rows",), tolerance=0.0))


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
