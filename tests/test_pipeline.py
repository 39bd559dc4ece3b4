"""End to end: the real dvc CLI on a fresh git repository holding this project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import sh

pytestmark = pytest.mark.e2e

OUTPUTS = (
    "data/raw/movies.jsonl",
    "data/prepared/train.parquet",
    "data/prepared/test.parquet",
    "data/prepared/validation.json",
    "models/model.skops",
    "models/backtest.json",
    "models/metrics.json",
    "models/plots/roc.csv",
    "models/plots/calibration.csv",
    "models/plots/importance.csv",
    "models/plots/backtest.csv",
    "models/plots/roc.png",
    "models/plots/backtest.png",
    "models/model_card.md",
)


def test_repro_is_deterministic_and_metrics_are_readable(project_repo: Path) -> None:
    sh("dvc", "repro", cwd=project_repo)
    lock1 = (project_repo / "dvc.lock").read_text()
    bytes1 = {p: (project_repo / p).read_bytes() for p in OUTPUTS}

    sh("dvc", "repro", "--force", cwd=project_repo)
    assert (project_repo / "dvc.lock").read_text() == lock1
    assert {p: (project_repo / p).read_bytes() for p in OUTPUTS} == bytes1

    metrics = json.loads(sh("dvc", "metrics", "show", "--json", cwd=project_repo).stdout)
    (workspace,) = metrics.values()  # one revision: the workspace
    values = workspace["data"]["models/metrics.json"]["data"]
    assert {"roc_auc", "pr_auc", "log_loss", "brier", "accuracy", "f1", "rows"} <= set(values)
    assert {"rmsle", "roc_auc_ci95", "baseline_majority", "baseline_logreg_budget"} <= set(values)
    assert {"mean", "by_year"} <= set(values["backtest"])
    plots = json.loads(sh("dvc", "plots", "show", "--json", cwd=project_repo).stdout)
    assert "Backtest ROC AUC by year" in json.dumps(plots)
    assert sh("dvc", "status", "--json", cwd=project_repo).stdout.strip() == "{}"


def test_committed_lock_matches_a_fresh_run(project_repo: Path) -> None:
    """A fresh clone + repro must leave dvc.lock as committed (git status clean)."""
    sh("dvc", "repro", cwd=project_repo)
    assert sh("git", "status", "--porcelain", cwd=project_repo).stdout == ""
