"""Which way is better for a metric, decided by its name so new metrics need no code."""

from __future__ import annotations

HIGHER_BETTER = frozenset(
    {"roc_auc", "pr_auc", "auc", "f1", "precision", "recall", "accuracy", "r2", "ap"}
)
LOWER_BETTER = frozenset({"log_loss", "brier", "rmsle", "rmse", "mae", "mse"})
NEUTRAL = frozenset({"rows", "base_rate", "threshold"})


def direction(key: str) -> int:
    """+1 if a higher value is better, -1 if lower is better, 0 if neutral or unknown.

    Decided by the leaf name only, so new nested metrics (backtest.mean.roc_auc) need no code.
    Flat names with a known metric as suffix (backtest_mean_roc_auc, baseline_linear_budget_rmsle,
    train_rows) go by that suffix, so flat headline metrics keep their direction.
    """
    leaf = key.rsplit(".", 1)[-1].rsplit(":", 1)[-1].lower()
    if leaf in NEUTRAL or any(leaf.endswith(f"_{n}") for n in NEUTRAL):
        return 0
    if leaf in LOWER_BETTER or "loss" in leaf or "error" in leaf:
        return -1
    if any(leaf.endswith(f"_{m}") for m in LOWER_BETTER):
        return -1
    if leaf in HIGHER_BETTER or any(leaf.startswith(f"{h}_") for h in HIGHER_BETTER):
        return 1
    if any(leaf.endswith(f"_{h}") for h in HIGHER_BETTER):
        return 1
    return 0
