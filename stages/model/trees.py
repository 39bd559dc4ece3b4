"""One evaluator for a fitted HistGradientBoosting head on small batches: every tree of the
head walked at once with numpy, level by level.

Why: scikit-learn's public predict makes one Python call per tree (per head and request:
one call for each of `max_iter` trees), and on the service's single-movie requests that
loop is most of the time a request takes; `python -m bench serve` prints both paths side
by side. On large batches scikit-learn's compiled loop is faster, so `Model` uses this
evaluator only up to `MAX_ROWS` rows.

It reads scikit-learn internals (the fitted trees' node arrays and baseline), so
it is never trusted blindly: `compile_head` verifies it bit for bit against the public
`decision_function`/`predict` on probe rows built from the trees' own thresholds and
categories, and returns a reason instead of an evaluator when anything differs or is
missing. The caller then scores on the public path and says so loudly (stages.model
.artifact). CI runs tests/model/test_trees.py on the pinned and the next scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

MAX_ROWS = 64  # up to this many rows, `raw` is faster than scikit-learn's per-tree loop
PROBE_ROWS = 512

Head: TypeAlias = HistGradientBoostingClassifier | HistGradientBoostingRegressor


@dataclass(frozen=True)
class Trees:
    """A head's trees as flat node arrays (leaves point to themselves) and the head's link."""

    roots: np.ndarray  # (trees,) index of each tree's root node
    feature: np.ndarray  # (nodes,)
    threshold: np.ndarray  # (nodes,) go left if x <= threshold (numeric nodes)
    missing_left: np.ndarray  # (nodes,) where NaN goes
    left: np.ndarray  # (nodes,)
    right: np.ndarray  # (nodes,)
    value: np.ndarray  # (nodes,) a leaf's value (learning rate included)
    depth: int
    baseline: float
    logistic: bool  # the classifier's link (expit); the regressor's is the identity

    def raw(self, X: np.ndarray) -> np.ndarray:
        """The head's decision values: the baseline plus every tree's leaf value, summed in
        tree order as scikit-learn sums them (float additions are not associative)."""
        X = np.asarray(X, dtype=np.float64)  # what scikit-learn compares in
        n = X.shape[0]
        node = np.broadcast_to(self.roots, (n, self.roots.size)).copy()
        rows = np.arange(n)[:, None]
        for _ in range(self.depth):
            x = X[rows, self.feature[node]]
            go_left = np.where(np.isnan(x), self.missing_left[node], x <= self.threshold[node])
            node = np.where(go_left, self.left[node], self.right[node])
        terms = np.empty((n, self.roots.size + 1))
        terms[:, 0] = 0.0 + self.baseline
        terms[:, 1:] = self.value[node]
        out: np.ndarray = np.add.accumulate(terms, axis=1)[:, -1]
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """P(positive class) for the classifier, the prediction for the regressor."""
        raw = self.raw(X)
        return expit(raw) if self.logistic else raw


def _flatten(head: Head) -> Trees:
    """The head's fitted trees as one Trees (AttributeError, KeyError, ValueError or
    TypeError if scikit-learn's internals are not the ones this reads)."""
    if isinstance(head, HistGradientBoostingClassifier):
        if head.loss != "log_loss" or len(head.classes_) != 2:
            raise ValueError(
                f"a classifier with loss {head.loss!r} on {len(head.classes_)} classes"
            )
        logistic = True
    elif head.loss == "squared_error":
        logistic = False
    else:
        raise ValueError(f"a regressor with loss {head.loss!r}")
    if head.is_categorical_ is not None and head.is_categorical_.any():
        raise ValueError("categorical splits (the feature step emits numeric features only)")
    offset, roots, parts = 0, [], []
    # Private: scikit-learn has no public access to a fitted HistGradientBoosting's trees
    # (no `estimators_`, no export); what is read here is verified by compile_head.
    for (predictor,) in head._predictors:
        nodes = predictor.nodes
        leaf = nodes["is_leaf"].astype(bool)
        ids = np.arange(nodes.size)
        parts.append(
            {
                "feature": np.where(leaf, 0, nodes["feature_idx"]),
                "threshold": nodes["num_threshold"].astype(np.float64),
                "missing_left": nodes["missing_go_to_left"].astype(bool),
                "left": offset + np.where(leaf, ids, nodes["left"].astype(np.intp)),
                "right": offset + np.where(leaf, ids, nodes["right"].astype(np.intp)),
                "value": np.where(leaf, nodes["value"], 0.0),
                "depth": nodes["depth"],
            }
        )
        roots.append(offset)
        offset += nodes.size
    columns = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    baseline = np.asarray(head._baseline_prediction, dtype=np.float64).reshape(-1)
    if baseline.size != 1:
        raise ValueError(f"{baseline.size} trees per iteration")
    return Trees(
        roots=np.asarray(roots, np.intp),
        feature=columns["feature"].astype(np.intp),
        threshold=columns["threshold"],
        missing_left=columns["missing_left"],
        left=columns["left"],
        right=columns["right"],
        value=columns["value"],
        depth=int(columns["depth"].max()),
        baseline=float(baseline[0]),
        logistic=logistic,
    )


def probe(trees: Trees, n_features: int, seed: int = 0) -> np.ndarray:
    """Rows that reach every kind of branch: per feature, each of its thresholds and the next
    float above it, NaN, 0 and the infinities, drawn at random."""
    rng = np.random.default_rng(seed)
    internal = trees.left != np.arange(trees.left.size)
    X = np.empty((PROBE_ROWS, n_features))
    for f in range(n_features):
        numeric = trees.threshold[internal & (trees.feature == f)]
        values = [np.nan, -np.inf, np.inf, 0.0, *numeric, *np.nextafter(numeric, np.inf)]
        X[:, f] = rng.choice(np.asarray(values, np.float64), PROBE_ROWS)
    return X


def public_predict(head: Head, X: np.ndarray) -> np.ndarray:
    """What `Trees.predict` must equal: scikit-learn's public output for the head."""
    if isinstance(head, HistGradientBoostingClassifier):
        proba: np.ndarray = head.predict_proba(X)[:, 1]
        return proba
    predicted: np.ndarray = head.predict(X)
    return predicted


def compile_head(head: Head) -> Trees | str:
    """The head's evaluator, verified bit for bit on probe rows, or why there is none."""
    try:
        trees = _flatten(head)
    except (AttributeError, KeyError, ValueError, TypeError, IndexError) as exc:
        return f"scikit-learn's fitted trees are not readable ({type(exc).__name__}: {exc})"
    X = probe(trees, head.n_features_in_)
    for start in range(0, PROBE_ROWS, MAX_ROWS):
        rows = X[start : start + MAX_ROWS]
        if trees.predict(rows).tobytes() != public_predict(head, rows).tobytes():
            return "its outputs differ from scikit-learn's public predict on probe rows"
    return trees
