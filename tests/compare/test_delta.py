"""Comparing flattened metrics: a verdict per key."""

from __future__ import annotations

import pytest

from stages.compare.delta import compare


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
