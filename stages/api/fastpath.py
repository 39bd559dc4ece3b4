"""Serving fast path for the two HistGradientBoosting heads, verified against the public API.

Why: on a one-film request sklearn's per-call preprocessing of a categorical-aware
HistGradientBoosting (a ColumnTransformer + OrdinalEncoder, ~6 ms per head) costs several
times the 150 trees themselves, and on a large batch its per-value Python mapping of
missing categories dominates. The heads share one feature step (train fits it once), so
the categorical columns arrive as pandas Categoricals with the feature step's fixed
categories: their ordinal codes can be mapped to the encoder's codes with one array lookup.

This reaches into sklearn internals (`_preprocessor`, `_predictors`, `_bin_mapper`,
`_baseline_prediction`, `_loss`), so it is only used when `build` can (a) find them and
(b) reproduce `predict_proba`/`predict` of the heads exactly (bitwise) on a probe covering
every category code, missing values included. Otherwise `build` returns None and scoring
uses the public pipelines: a newer sklearn can make the path slower, never wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

from stages.lib.features import CATEGORICAL, INPUT_FIELDS

log = logging.getLogger(__name__)

PROBE_ROWS = 64


@dataclass(frozen=True)
class _Head:
    """What one fitted head needs to score an encoded matrix."""

    estimator: Any
    categorical: tuple[str, ...]  # in the encoder's output order (first columns)
    numeric: tuple[str, ...]  # then these, as float64
    lookups: tuple[np.ndarray, ...]  # per categorical column: frame code + 1 -> encoder code
    bitsets: tuple[np.ndarray, np.ndarray]  # the known-categories bitsets and feature map

    @classmethod
    def build(cls, estimator: Any, dtypes: Mapping[str, pd.CategoricalDtype]) -> _Head:
        pre = estimator._preprocessor
        encoder = pre.named_transformers_["encoder"]
        names = list(estimator.feature_names_in_)
        mask = np.asarray(estimator.is_categorical_, dtype=bool)
        categorical = tuple(n for n, c in zip(names, mask, strict=True) if c)
        numeric = tuple(n for n, c in zip(names, mask, strict=True) if not c)
        if pre.output_indices_["encoder"] != slice(0, len(categorical)):
            raise ValueError("unexpected column order in the head's preprocessor")
        lookups = []
        for name, known in zip(categorical, encoder.categories_, strict=True):
            position = {v: i for i, v in enumerate(known) if isinstance(v, str)}
            cats = dtypes[name].categories
            # index 0 is code -1 (missing): NaN, as are categories the encoder never saw
            table = np.full(len(cats) + 1, np.nan)
            for j, value in enumerate(cats):
                table[j + 1] = position.get(value, np.nan)
            lookups.append(table)
        bitsets = estimator._bin_mapper.make_known_categories_bitsets()
        return cls(estimator, categorical, numeric, tuple(lookups), bitsets)

    def same_input(self, other: _Head) -> bool:
        return (
            self.categorical == other.categorical
            and self.numeric == other.numeric
            and all(
                np.array_equal(a, b, equal_nan=True)
                for a, b in zip(self.lookups, other.lookups, strict=True)
            )
        )

    def encode(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """What the head's ColumnTransformer makes of the feature frame: encoded categories
        first, then the numeric columns."""
        n = len(columns[self.numeric[0]]) if self.numeric else len(columns[self.categorical[0]])
        enc = np.empty((n, len(self.categorical) + len(self.numeric)))
        for j, (name, table) in enumerate(zip(self.categorical, self.lookups, strict=True)):
            enc[:, j] = table[columns[name] + 1]
        k = len(self.categorical)
        for j, name in enumerate(self.numeric):
            enc[:, k + j] = columns[name]
        return enc

    def raw(self, enc: np.ndarray) -> np.ndarray:
        """Sum of the leaves over all trees, added as HistGradientBoosting._raw_predict does."""
        est = self.estimator
        raw = np.zeros(
            (len(enc), est.n_trees_per_iteration_), dtype=est._baseline_prediction.dtype, order="F"
        )
        raw += est._baseline_prediction
        bitsets, f_idx_map = self.bitsets
        threads = _openmp_effective_n_threads(None)
        for predictors in est._predictors:
            for i, predictor in enumerate(predictors):
                raw[:, i] += predictor.predict(enc, bitsets, f_idx_map, threads)
        return raw


@dataclass(frozen=True)
class FastHeads:
    """P(success) and log1p(revenue) from the feature step's arrays, without pandas or the
    heads' per-call sklearn preprocessing."""

    classifier: _Head
    regressor: _Head

    def predict(self, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(P(success), log1p(revenue)) from FeatureStep.transform_arrays' output."""
        enc = self.classifier.encode(columns)
        enc_reg = (
            enc if self.regressor.same_input(self.classifier) else self.regressor.encode(columns)
        )
        clf, reg = self.classifier.estimator, self.regressor.estimator
        proba = clf._loss.predict_proba(self.classifier.raw(enc))[:, 1]
        log_revenue = reg._loss.link.inverse(self.regressor.raw(enc_reg).ravel())
        return np.asarray(proba, dtype=float), np.asarray(log_revenue, dtype=float)


def probe_columns(feats: Any, rows: int = PROBE_ROWS, seed: int = 0) -> dict[str, np.ndarray]:
    """Feature arrays that visit every category code (missing included) of every categorical
    column and mix finite, zero and missing numbers: what the verification scores."""
    empty = feats.transform(pd.DataFrame({c: pd.Series([], dtype=object) for c in INPUT_FIELDS}))
    rng = np.random.default_rng(seed)
    widths = [len(empty[c].dtype.categories) for c in empty.columns if c in CATEGORICAL]
    rows = max(rows, *(k + 1 for k in widths))  # enough rows to visit every code
    out: dict[str, np.ndarray] = {}
    for name in empty.columns:
        if name in CATEGORICAL:
            k = len(empty[name].dtype.categories)
            out[name] = rng.permutation((np.arange(rows) % (k + 1)) - 1)
        else:
            values = rng.normal(0, 5, rows)
            values[rng.random(rows) < 0.2] = np.nan
            values[rng.random(rows) < 0.1] = 0.0
            out[name] = values
    return out


def build(model: Mapping[str, Any], feats: Any) -> FastHeads | None:
    """FastHeads for a model whose heads share `feats`, or None (with the reason logged) when
    sklearn's internals are not what this path expects or do not reproduce the heads."""
    clf, reg = model["classifier"][-1], model["regressor"][-1]
    try:
        columns = probe_columns(feats)
        dtypes = {name: feats._category_dtype(name) for name in CATEGORICAL}
        frame = pd.DataFrame(
            {
                name: (
                    pd.Categorical.from_codes(values, dtype=dtypes[name])
                    if name in CATEGORICAL
                    else values
                )
                for name, values in columns.items()
            }
        )
        fast = FastHeads(_Head.build(clf, dtypes), _Head.build(reg, dtypes))
        proba, log_revenue = fast.predict(columns)
        same = np.array_equal(proba, clf.predict_proba(frame)[:, 1], equal_nan=True)
        same &= np.array_equal(log_revenue, reg.predict(frame), equal_nan=True)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        log.warning("scoring: fast path unavailable (%s); using the sklearn pipelines", exc)
        return None
    if not same:
        log.warning("scoring: fast path does not reproduce the model; using the sklearn pipelines")
        return None
    return fast
