"""Metrics shared by evaluate and backtest, named plainly for `dvc metrics diff`."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn import metrics as skm

from stages.model import portable

DIGITS = 6


def r(x: float) -> float:
    return round(float(x), DIGITS)


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, threshold: float) -> dict:
    """Ranking, probability and thresholded metrics of P(success) on one period."""
    pred = (proba >= threshold).astype(int)
    return {
        "roc_auc": r(skm.roc_auc_score(y_true, proba)),
        "pr_auc": r(skm.average_precision_score(y_true, proba)),
        "log_loss": r(skm.log_loss(y_true, np.clip(proba, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "brier": r(skm.brier_score_loss(y_true, proba)),
        "accuracy": r(skm.accuracy_score(y_true, pred)),
        "f1": r(skm.f1_score(y_true, pred, zero_division=0)),
        "precision": r(skm.precision_score(y_true, pred, zero_division=0)),
        "recall": r(skm.recall_score(y_true, pred, zero_division=0)),
        "threshold": r(threshold),
        "rows": len(y_true),
        "base_rate": r(np.mean(y_true)),
    }


def rmsle(revenue: np.ndarray, predicted_log1p: np.ndarray) -> float:
    """Root mean squared error of log(1 + revenue), the TMDB box-office challenge metric."""
    return rmse_log(portable.log1p(revenue), predicted_log1p)


def rmse_log(log_true: np.ndarray, log_pred: np.ndarray) -> float:
    """RMSE between values already on the log(1 + revenue) scale."""
    return float(np.sqrt(np.mean((log_true - log_pred) ** 2)))


def bootstrap_auc_ci(
    y_true: np.ndarray, proba: np.ndarray, rounds: int, seed: int, level: float = 0.95
) -> dict[str, float]:
    """Percentile bootstrap interval of ROC AUC over films resampled with replacement."""
    rng = np.random.default_rng(seed)
    n = len(y_true)
    aucs = []
    for _ in range(rounds):
        idx = rng.integers(0, n, n)
        y = y_true[idx]
        if 0 < y.sum() < n:
            aucs.append(rank_auc(y, proba[idx]))
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(aucs, [tail, 100 - tail])
    return {"lo": r(lo), "hi": r(hi)}


def mean_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Unweighted mean over periods of every numeric leaf (nested dicts kept nested)."""
    out: dict[str, Any] = {}
    for key, first in rows[0].items():
        if isinstance(first, dict):
            out[key] = mean_of([row[key] for row in rows])
        elif key not in {"rows", "threshold"}:
            out[key] = r(np.mean([row[key] for row in rows]))
    return out


def rank_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC from average ranks (Mann-Whitney U); equal to sklearn's, without its overhead."""
    pos = y_true == 1
    n1 = int(pos.sum())
    n0 = len(y_true) - n1
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
