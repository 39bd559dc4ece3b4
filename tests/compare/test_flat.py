"""Flattening nested metrics, params and data summaries to comparable keys."""

from __future__ import annotations

from stages.compare.flat import flatten


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
