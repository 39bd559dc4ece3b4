"""The PR report: pure comparison/rendering, and the command on real git + DVC repositories."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from stages.report import Snapshot, compare, data_summary, direction, flatten, render
from tests.conftest import mini_commit, sh

# ----------------------------------------------------------------------------- pure core


def test_flatten_joins_nested_keys() -> None:
    nested = {
        "roc_auc": 0.7,
        "baseline_majority": {"accuracy": 0.55},
        "backtest": {"mean": {"log_loss": 0.6}, "by_year": {"2009": {"roc_auc": 0.61}}},
        "roc_auc_ci95": {"lo": 0.6, "hi": 0.8},
        "years": [2008, 2009],
    }
    assert flatten(nested) == {
        "roc_auc": 0.7,
        "baseline_majority.accuracy": 0.55,
        "backtest.mean.log_loss": 0.6,
        "backtest.by_year.2009.roc_auc": 0.61,
        "roc_auc_ci95.lo": 0.6,
        "roc_auc_ci95.hi": 0.8,
        "years": "[2008, 2009]",
    }
    assert nested["backtest"]["mean"] == {"log_loss": 0.6}  # input not mutated


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("log_loss", -1),
        ("brier", -1),
        ("rmsle", -1),
        ("backtest.mean.val_loss", -1),
        ("abs_error", -1),
        ("roc_auc", 1),
        ("backtest.by_year.2009.pr_auc", 1),
        ("f1", 1),
        ("precision", 1),
        ("recall", 1),
        ("accuracy", 1),
        ("baseline_majority.accuracy", 1),
        ("rows", 0),
        ("test.base_rate", 0),
        ("threshold", 0),
        ("roc_auc_ci95.lo", 0),
        ("something_new", 0),
    ],
)
def test_direction_from_leaf_name(key: str, expected: int) -> None:
    assert direction(key) == expected


def test_compare_marks_better_worse_neutral_new_removed() -> None:
    base = {"roc_auc": 0.70, "log_loss": 0.60, "rows": 100, "gone": 1.0, "brier": 0.2}
    head = {"roc_auc": 0.75, "log_loss": 0.65, "rows": 120, "new.f1": 0.5, "brier": 0.2}
    verdicts = {d.key: d.verdict for d in compare(base, head)}
    assert verdicts == {
        "roc_auc": "better",
        "log_loss": "worse",
        "rows": "changed",
        "gone": "removed",
        "new.f1": "new",
        "brier": "same",
    }
    (auc,) = [d for d in compare(base, head) if d.key == "roc_auc"]
    assert auc.change == pytest.approx(0.05)


def snap(label: str, auc: float | None, lr: float = 0.1, rows: int = 100) -> Snapshot:
    return Snapshot(
        label=label,
        metrics=None if auc is None else {"roc_auc": auc, "log_loss": 1 - auc, "rows": 50},
        params={"train.learning_rate": lr},
        data={"rows_out": rows, "dropped_total": 3},
    )


def test_render_improvement_and_regression_rows() -> None:
    md = render(snap("base", 0.70), snap("head", 0.72, lr=0.2, rows=110), card="# Card\n")
    assert "| `roc_auc` | 0.7 | 0.72 | +0.02 | 🟢 better |" in md
    assert "| `log_loss` | 0.3 | 0.28 | -0.02 | 🟢 better |" in md
    assert "| `train.learning_rate` | 0.1 | 0.2 |" in md
    assert "| `rows_out` | 100 | 110 |" in md
    assert "Plots are not available" in md
    assert "[model card](model_card.md)" in md
    md = render(snap("base", 0.70), snap("head", 0.60), card=None)
    assert "| `roc_auc` | 0.7 | 0.6 | -0.1 | 🔴 worse |" in md
    assert "0 better, 2 worse" in md
    changed_part, unchanged_part = md.split("1 unchanged metrics")
    assert "| `rows` |" not in changed_part
    assert "| `rows` | 50 | 50 | +0 |  |" in unchanged_part


def test_render_no_change_says_so_in_one_line() -> None:
    md = render(snap("base", 0.7), snap("head", 0.7), card=None)
    assert "**No change** against base" in md
    assert "No change in any of the 3 metrics." in md
    assert "| metric |" not in md
    assert "No change in params." in md


def test_render_base_without_metrics() -> None:
    md = render(Snapshot(label="base"), snap("head", 0.7), card=None)
    assert "The base has no metrics yet" in md
    assert "| `roc_auc` | — | 0.7 |  | new |" in md
    assert "The base has no params" in md


def test_data_summary_picks_rows_base_rate_and_drops() -> None:
    validation = {
        "rows_in": 10,
        "rows_out": 7,
        "dropped": {"a": 2, "b": 1},
        "fixed": {"x": 4},
        "train": {"rows": 5, "base_rate": 0.4, "first_release": "2000-01-01"},
        "passed": True,
    }
    assert data_summary(validation) == {
        "rows_in": 10,
        "rows_out": 7,
        "dropped.a": 2,
        "dropped.b": 1,
        "dropped_total": 3,
        "train.rows": 5,
        "train.base_rate": 0.4,
        "passed": True,
    }


# ------------------------------------------------------------- command on real repositories


def report(
    repo: Path, base: str, out: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return sh("python", "-m", "stages.report", "--base", base, "--out", out, cwd=repo, check=check)


def report_md(repo: Path, base: str, out: Path) -> str:
    report(repo, base, out)
    return (out / "report.md").read_text()


@pytest.mark.e2e
def test_report_commands_on_two_commit_repos(mini_repo: Path, tmp_path: Path) -> None:
    # base without metrics: main has params only
    sh("git", "checkout", "-q", "-b", "feature", cwd=mini_repo)
    mini_commit(mini_repo, 0.70, "add the pipeline")
    md = report_md(mini_repo, "main", tmp_path / "r0")
    assert "The base has no metrics yet" in md
    assert "| `backtest.mean.roc_auc` | — | 0.69 |  | new |" in md
    assert (tmp_path / "r0/head_roc.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "r0/base_roc.png").exists()

    # improvement: base = the previous commit, read through DVC from the cache
    sh("git", "branch", "-f", "base1", "HEAD", cwd=mini_repo)
    mini_commit(mini_repo, 0.80, "better model")
    out = tmp_path / "r1"
    t0 = time.perf_counter()
    report(mini_repo, "base1", out)
    assert time.perf_counter() - t0 < 10
    md = (out / "report.md").read_text()
    assert "| `roc_auc` | 0.7 | 0.8 | +0.1 | 🟢 better |" in md
    assert "| `log_loss` | 0.3 | 0.2 | -0.1 | 🟢 better |" in md
    assert "| `train.quality` | 0.7 | 0.8 |" in md
    assert "![head roc.png](head_roc.png)" in md
    assert "![base roc.png](base_roc.png)" in md
    assert (out / "head_roc.png").read_bytes() != (out / "base_roc.png").read_bytes()
    assert "quality 0.8" in (out / "model_card.md").read_text()

    # regression
    sh("git", "branch", "-f", "base2", "HEAD", cwd=mini_repo)
    mini_commit(mini_repo, 0.60, "worse model")
    md = report_md(mini_repo, "base2", tmp_path / "r2")
    assert "| `roc_auc` | 0.8 | 0.6 | -0.2 | 🔴 worse |" in md
    assert "| `log_loss` | 0.2 | 0.4 | +0.2 | 🔴 worse |" in md

    # no change: head equals base
    md = report_md(mini_repo, "HEAD", tmp_path / "r3")
    assert "**No change** against base `HEAD`" in md
    assert "| metric |" not in md

    # a shallow clone of the feature branch: main is unknown, fetched once from origin
    clone = tmp_path / "shallow"
    sh(
        "git",
        "clone",
        "-q",
        "--depth=1",
        "--single-branch",
        "--branch",
        "feature",
        f"file://{mini_repo}",
        str(clone),
        cwd=tmp_path,
    )
    sh("dvc", "cache", "dir", "--local", str(mini_repo / ".dvc" / "cache"), cwd=clone)
    sh("dvc", "checkout", "-q", cwd=clone)
    assert (
        sh(
            "git", "rev-parse", "--verify", "--quiet", "base2^{commit}", cwd=clone, check=False
        ).returncode
        != 0
    )
    md = report_md(clone, "base2", tmp_path / "r4")
    assert "| `roc_auc` | 0.8 | 0.6 | -0.2 | 🔴 worse |" in md

    # ... and without a way to fetch it: one line with the fix
    shutil.rmtree(tmp_path / "r4")
    sh("git", "remote", "remove", "origin", cwd=clone)
    proc = report(clone, "base1", tmp_path / "r4", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: base revision 'base1' is not in this clone (shallow?) and could not be fetched; "
        "run `git fetch --depth=1 origin base1` (or check out with fetch-depth: 0)"
    )
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r4").exists()


@pytest.mark.e2e
def test_report_on_the_real_pipeline_without_change(
    reproduced_project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    report(reproduced_project, "main", out)
    md = (out / "report.md").read_text()
    assert "**No change** against base `main`" in md
    assert "Plots are not available" in md or "head_" in md
    metrics = json.loads((reproduced_project / "models/metrics.json").read_text())
    assert f"No change in any of the {len(flatten(metrics))} metrics." in md
    assert (out / "model_card.md").read_text().startswith("# Model card")
