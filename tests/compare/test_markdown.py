"""The report's markdown from two snapshots."""

from __future__ import annotations

import datetime as dt

from stages.compare.gate import Decision, Guard
from stages.compare.markdown import decision_markdown, render
from stages.compare.paired import Paired, SameRows
from stages.compare.snapshot import Snapshot


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
    assert "No plots (`dvc plots diff` found none of dvc.yaml's plots)." in md
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


def test_decision_markdown_shows_both_models_on_the_same_rows() -> None:
    paired = (
        Paired("roc_auc", 0.7, 0.68, -0.02, -0.05, 0.01),
        Paired("pr_auc", 0.5, 0.5, 0.0, -0.01, 0.01),
        Paired("log_loss", 0.6, 0.61, 0.01, 0.0, 0.02),
        Paired("brier", 0.2, 0.2, 0.0, 0.0, 0.0),
    )
    same = SameRows(rows=160, base_rate=0.4, metrics=paired, rounds=100, resamples=99, seed=7)
    guards = (
        Guard("roc_auc", 0.7, 0.68, -0.02, -0.05, 0.01, 0.02, True),
        Guard("log_loss", 0.6, 0.61, 0.01, 0.0, 0.02, 0.01, False),
    )
    decision = Decision("review", ("roc_auc is worse",), guards, tolerance=0.01)
    md = decision_markdown(decision, same, dt.date(2012, 6, 30), "`main` (abc123)")
    assert md.startswith("# Retrain on data up to 2012-06-30: gated: open for review\n")
    assert "the same 160 test films of the new snapshot (base rate 0.4)" in md
    assert "- roc_auc is worse" in md
    assert "| `roc_auc` | 0.7 | 0.68 | -0.02 | -0.05 to +0.01 | 🔴 worse |" in md
    assert "| `log_loss` | 0.6 | 0.61 | +0.01 | +0 to +0.02 | ok |" in md
    assert "| `pr_auc` | 0.5 | 0.5 | +0 | -0.01 to +0.01 | not guarded |" in md
    assert "99 of 100 paired bootstrap resamples of the films (seed 7)" in md
