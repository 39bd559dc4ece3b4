"""The budget-only baselines: a logistic regression for success and a line for log revenue.

Why not scikit-learn's LogisticRegression and LinearRegression: their solvers (L-BFGS, lstsq)
reduce through BLAS, and OpenBLAS picks its dot-product kernel by CPU, so the fitted
coefficients differ in the last bits from one machine to the next (measured: fitting under
OPENBLAS_CORETYPE=Prescott changes the logistic coefficients). With one feature both fits are
a few lines of exact arithmetic: sums are numpy's pairwise sums (a fixed order on every CPU)
and the transcendental parts come from stages.model.portable. The objectives are
scikit-learn's defaults: L2 penalty with C = 1 on the standardized feature, intercept free.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from stages.model import portable
from stages.model.features import log_budget

NEWTON_STEPS = 100  # Newton's method converges in fewer than 10 on real budgets


def _feature(X: pd.DataFrame, median: float) -> np.ndarray:
    """log(1 + budget), a missing or non-positive budget replaced by the training median."""
    x = log_budget(X)
    return np.where(np.isfinite(x), x, median)


class BudgetLogistic(ClassifierMixin, BaseEstimator):
    """P(success) from log budget: L2-penalised logistic regression fitted by Newton's method."""

    def __init__(self, C: float = 1.0) -> None:
        self.C = C

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> BudgetLogistic:
        raw = log_budget(X)
        self.median_ = float(np.median(raw[np.isfinite(raw)]))
        x = _feature(X, self.median_)
        self.mean_ = float(np.sum(x) / len(x))
        spread = float(np.sqrt(np.sum((x - self.mean_) ** 2) / len(x)))
        self.scale_ = spread if spread > 0 else 1.0
        z = (x - self.mean_) / self.scale_
        t = np.asarray(y, dtype=np.float64)
        self.classes_ = np.array([0, 1])
        a = b = 0.0
        for _ in range(NEWTON_STEPS):
            p = portable.expit(a + b * z)
            r = p - t
            w = p * (1.0 - p)
            g_a, g_b = float(np.sum(r)), float(np.sum(r * z)) + b / self.C
            h_aa, h_ab = float(np.sum(w)), float(np.sum(w * z))
            h_bb = float(np.sum(w * z * z)) + 1.0 / self.C
            det = h_aa * h_bb - h_ab * h_ab
            if det <= 0:
                break
            step_a = (h_bb * g_a - h_ab * g_b) / det
            step_b = (h_aa * g_b - h_ab * g_a) / det
            a, b = a - step_a, b - step_b
            if abs(step_a) <= 1e-12 * (1.0 + abs(a)) and abs(step_b) <= 1e-12 * (1.0 + abs(b)):
                break
        self.intercept_, self.coef_ = a, b
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        z = (_feature(X, self.median_) - self.mean_) / self.scale_
        p = portable.expit(self.intercept_ + self.coef_ * z)
        return np.column_stack([1.0 - p, p])


class BudgetLinear(RegressorMixin, BaseEstimator):
    """Least-squares line of a target (log revenue) on log budget, in closed form."""

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> BudgetLinear:
        raw = log_budget(X)
        self.median_ = float(np.median(raw[np.isfinite(raw)]))
        x = _feature(X, self.median_)
        t = np.asarray(y, dtype=np.float64)
        mx, mt = float(np.sum(x) / len(x)), float(np.sum(t) / len(t))
        sxx = float(np.sum((x - mx) ** 2))
        self.coef_ = float(np.sum((x - mx) * (t - mt))) / sxx if sxx > 0 else 0.0
        self.intercept_ = mt - self.coef_ * mx
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.intercept_ + self.coef_ * _feature(X, self.median_)
