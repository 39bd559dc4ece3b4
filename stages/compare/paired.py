"""Two models' probabilities on the same films: each one's metrics and the paired bootstrap
interval of their difference.

Paired means every resample draws the same films (rows, with replacement) for both models, so
the interval is of the difference itself, not of two separate scores: films that are hard for
one model are usually hard for the other, and pairing removes that shared noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score

from stages.compare.gate import COMPARED
from stages.core.cli import UserError
from stages.model.metrics import r, rank_auc

EPS = 1e-15  # probabilities are clipped to [EPS, 1 - EPS] for the log loss, as in evaluate
LEVEL = 0.95  # of the difference's interval


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    q = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def pr_auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(average_precision_score(y, p))


_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "roc_auc": rank_auc,
    "pr_auc": pr_auc,
    "log_loss": log_loss,
    "brier": brier,
}
# The metrics compared on the same rows, in the gate's order; each one's direction is its name's.
METRICS = {name: _FUNCTIONS[name] for name in COMPARED}


@dataclass(frozen=True)
class Paired:
    """One metric of both models on the same rows; `difference` is head - base."""

    metric: str
    base: float
    head: float
    difference: float
    lo: float  # the difference's paired bootstrap interval
    hi: float


@dataclass(frozen=True)
class SameRows:
    """Both models scored on the same `rows` films; `resamples` had both classes."""

    rows: int
    base_rate: float
    metrics: tuple[Paired, ...]
    rounds: int
    resamples: int
    seed: int
    level: float = LEVEL

    def get(self, metric: str) -> Paired:
        return next(m for m in self.metrics if m.metric == metric)


def compare_same_rows(
    y: np.ndarray, base: np.ndarray, head: np.ndarray, rounds: int, seed: int
) -> SameRows:
    """Metrics of `base` and `head` probabilities on labels `y`, and for each metric the
    percentile interval of head - base over `rounds` paired resamples of the rows."""
    y = np.asarray(y, dtype=float)
    base = np.asarray(base, dtype=float)
    head = np.asarray(head, dtype=float)
    n = len(y)
    if not n == len(base) == len(head):
        raise ValueError(f"not the same rows: {n} labels, {len(base)} and {len(head)} scores")
    if not 0 < y.sum() < n:
        raise UserError(
            f"the {n} test films are all of one class: ROC AUC is undefined; "
            "check prepare's label and split"
        )
    rng = np.random.default_rng(seed)
    diffs: dict[str, list[float]] = {name: [] for name in METRICS}
    for _ in range(rounds):
        idx = rng.integers(0, n, n)
        yi = y[idx]
        if not 0 < yi.sum() < n:
            continue  # a one-class resample has no AUC; skipped, as in evaluate
        for name, fn in METRICS.items():
            diffs[name].append(fn(yi, head[idx]) - fn(yi, base[idx]))
    resamples = len(diffs["roc_auc"])
    if resamples == 0:
        raise UserError(f"retrain: no bootstrap resample of the {n} test films had both classes")
    tail = (1 - LEVEL) / 2 * 100
    paired = []
    for name, fn in METRICS.items():
        b, h = fn(y, base), fn(y, head)
        lo, hi = np.percentile(diffs[name], [tail, 100 - tail])
        paired.append(Paired(name, r(b), r(h), r(h - b), r(lo), r(hi)))
    return SameRows(
        rows=n,
        base_rate=r(y.mean()),
        metrics=tuple(paired),
        rounds=rounds,
        resamples=resamples,
        seed=seed,
    )
