"""The report's markdown from two snapshots."""

from __future__ import annotations

import datetime as dt

from stages.compare.gate import Decision, Guard
from stages.compare.markdown import decision_markdown, render
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


def test_decision_markdown_lists_reasons_and_guarded_metrics() -> None:
    guard = Guard("log_loss", 0.5, 0.52, 0.02, 0.02, True)
    decision = Decision("review", ("log_loss is worse",), (guard,))
    md = decision_markdown(decision, dt.date(2012, 6, 30), "`main` (abc123)")
    assert md.startswith("# Retrain on data up to 2012-06-30: gated: open for review\n")
    assert "- log_loss is worse" in md
    assert "| `log_loss` | 0.5 | 0.52 | 0.02 |" in md
