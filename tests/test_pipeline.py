"""End to end: the real dvc CLI on a fresh git repository holding this project."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import baseline_cpu_env, copy_project, sh

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
    assert {"rmsle", "roc_auc_ci95_lo", "roc_auc_ci95_hi", "baseline_majority_roc_auc"} <= set(
        values
    )
    assert {"baseline_logreg_budget_roc_auc", "backtest_mean_roc_auc"} <= set(values)
    assert all(not isinstance(v, dict) for v in values.values())  # one flat level
    assert len(values) < 30  # one readable row in `dvc exp show`
    backtest = json.loads((project_repo / "models/backtest.json").read_text())
    assert {"mean", "by_year"} <= set(backtest)
    plots = json.loads(sh("dvc", "plots", "show", "--json", cwd=project_repo).stdout)
    assert "Backtest ROC AUC by year" in json.dumps(plots)
    assert sh("dvc", "status", "--json", cwd=project_repo).stdout.strip() == "{}"


def test_committed_lock_matches_a_fresh_run(project_repo: Path) -> None:
    """A fresh clone + repro must leave dvc.lock as committed (git status clean)."""
    sh("dvc", "repro", cwd=project_repo)
    assert sh("git", "status", "--porcelain", cwd=project_repo).stdout == ""


def dvc_outputs(repo: Path) -> dict[str, bytes]:
    """Every file DVC tracks as a stage output in `repo`, by path (plus dvc.lock)."""
    listed = subprocess.run(
        ["git", "ls-files", "-o", "-i", "--exclude-standard", "data", "models"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    files = [p for p in listed if not p.startswith("data/cache/")]
    return {p: (repo / p).read_bytes() for p in ["dvc.lock", *sorted(files)]}


def test_outputs_do_not_depend_on_the_cpu(reproduced_project: Path, tmp_path: Path) -> None:
    """The whole pipeline under numpy's full SIMD dispatch and under none of it (plus generic
    OpenBLAS and glibc kernels) writes the same bytes: a teammate's or a CI runner's CPU
    reproduces the committed dvc.lock."""
    env = baseline_cpu_env()
    repo = copy_project(tmp_path / "repo")
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    sh("dvc", "repro", cwd=repo, env=env)
    full, baseline = dvc_outputs(reproduced_project), dvc_outputs(repo)
    assert set(baseline) == set(full)
    assert "models/model.skops" in full
    assert [p for p in full if full[p] != baseline[p]] == []
