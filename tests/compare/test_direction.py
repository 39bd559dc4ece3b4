"""Better/worse direction from a metric's name."""

from __future__ import annotations

import pytest

from stages.compare.direction import direction


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
        ("backtest_mean_roc_auc", 1),
        ("baseline_linear_budget_rmsle", -1),
        ("models/backtest.json:by_year.2009.roc_auc", 1),
        ("train_rows", 0),
        ("backtest_mean_base_rate", 0),
    ],
)
def test_direction_from_leaf_name(key: str, expected: int) -> None:
    assert direction(key) == expected
