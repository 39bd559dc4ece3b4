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
every category code, missing values included, and every numeric split threshold, through
each of its two evaluators (below). Otherwise `build` returns None and scoring
uses the public pipelines: a newer sklearn can make the path slower, never wrong.

Two evaluators sum the trees, both verified by `build`: sklearn's per-tree
`TreePredictor.predict` (efficient for large batches, but ~15 us of call overhead per tree,
i.e. ~4.5 ms for the 300 trees of a one-film request) and `_Forest`, which walks all trees
of a head at once with numpy gathers (one call per tree level instead of per tree). The
batch size picks one: see NUMPY_MAX_ROWS.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

from stages.lib.features import CATEGORICAL, INPUT_FIELDS

log = logging.getLogger(__name__)

PROBE_ROWS = 64
# Largest batch walked by _Forest; larger ones use sklearn's per-tree predict. Measured on
# models/model.skops (2 heads x 150 trees, depth 7) with 1 OpenMP thread as the service runs,
# on the loaded 2-core dev box, FastHeads.predict medians, _Forest vs per-tree: 1 row 0.8 vs
# 7.5 ms, 8 rows 1.5 vs 7.6, 64 rows 3.4 vs 7.2, 128 rows 6.6 vs 7.6, 192 rows 10.9 vs 11.3,
# 256 rows 15.9 vs 14.2, 1024 rows 64 vs 35. _Forest's cost grows with rows x trees, the
# per-tree path's barely until ~100 rows: they cross near 200 rows, so 128 keeps a margin.
NUMPY_MAX_ROWS = 128
MISSING_CODE = 256  # _Forest's column for "missing" in its categorical decision table


@dataclass(frozen=True)
class _Forest:
    """Every tree of a head as flat node arrays (global node ids), walked for all
    (row, tree) pairs at once: <= depth rounds of numpy gathers instead of one sklearn call
    per tree. Follows _predictor.pyx's `_predict_one_from_raw_data` rules:

    - NaN goes the node's missing_go_to_left way;
    - numeric split: value <= num_threshold goes left;
    - categorical split: a negative value is missing; a code in the node's raw-left bitset
      goes left, else a code in the feature's known-categories bitset goes right, else
      (unknown category) the missing way. Precomputed per categorical node as a table over
      the 256 uint8 codes plus a missing column.
    """

    feature: np.ndarray  # intp per node (0 for leaves)
    threshold: np.ndarray  # float64 per node
    missing_left: np.ndarray  # bool per node
    children: np.ndarray  # intp [right, left] per node (at 2 * id); a leaf links to itself
    categorical: np.ndarray  # bool per node
    table_start: np.ndarray  # intp per node: where its row of `go_left` starts (0: numeric)
    go_left: np.ndarray  # bool, a row of 257 per categorical node (+ a dummy first row):
    # code 0..255 (256: missing) -> goes left
    value: np.ndarray  # float64 per node
    roots: np.ndarray  # intp per tree, in sklearn's order: iteration, then tree of it
    depth: int  # longest root-to-leaf path, from the links (not the `depth` field)
    baseline: np.ndarray  # (1, n_trees_per_iteration)

    @classmethod
    def build(cls, estimator: Any, known: np.ndarray, f_idx_map: np.ndarray) -> _Forest:
        trees = [p for predictors in estimator._predictors for p in predictors]
        nodes = np.concatenate([p.nodes for p in trees])
        sizes = np.array([len(p.nodes) for p in trees])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        offset = np.repeat(starts, sizes)
        leaf = nodes["is_leaf"].astype(bool)
        ids = np.arange(len(nodes))
        left = np.where(leaf, ids, nodes["left"].astype(np.intp) + offset)
        right = np.where(leaf, ids, nodes["right"].astype(np.intp) + offset)
        if left.max(initial=0) >= len(nodes) or right.max(initial=0) >= len(nodes):
            raise ValueError("a tree links outside its nodes")
        feature = np.where(leaf, 0, nodes["feature_idx"]).astype(np.intp)
        categorical = nodes["is_categorical"].astype(bool) & ~leaf
        missing_left = nodes["missing_go_to_left"].astype(bool)

        # per categorical node: which of the 256 codes go left, then the missing column
        bit_starts = np.cumsum([0] + [len(p.raw_left_cat_bitsets) for p in trees])[:-1]
        raw_left = np.concatenate(
            [np.zeros((0, 8), np.uint32), *(p.raw_left_cat_bitsets for p in trees)]
        )
        cat = np.flatnonzero(categorical)
        codes = np.arange(256)
        in_raw_left = _bits(
            raw_left,
            (nodes["bitset_idx"].astype(np.intp) + np.repeat(bit_starts, sizes))[cat],
            codes,
        )
        in_known = _bits(known, f_idx_map[feature[cat]].astype(np.intp), codes)
        go_left = np.zeros((len(cat) + 1, MISSING_CODE + 1), dtype=bool)
        go_left[1:, :256] = in_raw_left | (~in_known & missing_left[cat, None])
        go_left[1:, MISSING_CODE] = missing_left[cat]
        table_start = np.zeros(len(nodes), dtype=np.intp)
        table_start[cat] = np.arange(1, len(cat) + 1) * (MISSING_CODE + 1)

        roots = starts.astype(np.intp)
        depth, level = 0, roots
        while not leaf[level].all():
            inner = level[~leaf[level]]
            level = np.concatenate([left[inner], right[inner]])
            depth += 1
            if depth > len(nodes):
                raise ValueError("a tree has a cycle")
        return cls(
            feature=feature,
            threshold=nodes["num_threshold"].astype(np.float64),
            missing_left=missing_left,
            children=np.stack([right, left], axis=1).ravel(),
            categorical=categorical,
            table_start=table_start,
            go_left=go_left.ravel(),
            value=nodes["value"].astype(np.float64),
            roots=roots,
            depth=depth,
            baseline=np.asarray(estimator._baseline_prediction, dtype=np.float64),
        )

    def splits(self) -> np.ndarray:
        """Bool per node: not a leaf."""
        return self.children[1::2] != np.arange(len(self.feature))

    def raw(self, enc: np.ndarray) -> np.ndarray:
        """Like sklearn's raw predictions: the baseline, then each tree's leaf added in
        sklearn's order (cumsum is sequential, as `raw[:, k] += tree` is), so bitwise equal."""
        n, width = enc.shape
        flat = np.ascontiguousarray(enc, dtype=np.float64).ravel()
        base = np.repeat(np.arange(n, dtype=np.intp) * width, len(self.roots))
        node = np.tile(self.roots, n)
        for _ in range(self.depth):
            x = flat[base + self.feature[node]]
            left = np.where(np.isnan(x), self.missing_left[node], x <= self.threshold[node])
            cat = np.flatnonzero(self.categorical[node])  # only these: cheaper than masking
            if len(cat):
                value = x[cat]
                # uint8 codes as the Cython cast truncates them; NaN and < 0 are missing
                code = np.where((value >= 0) & (value < 256), value, MISSING_CODE)
                left[cat] = self.go_left[code.astype(np.intp) + self.table_start[node[cat]]]
            node = self.children[2 * node + left]
        per_tree = self.baseline.shape[1]
        steps = np.zeros((n, len(self.roots) // per_tree + 1, per_tree))
        steps[:, 0] += self.baseline
        steps[:, 1:] = self.value[node].reshape(n, -1, per_tree)
        return np.asfortranarray(np.cumsum(steps, axis=1)[:, -1])


def _bits(bitsets: np.ndarray, rows: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """(len(rows), len(codes)) bool: whether each code is in each row's uint32x8 bitset."""
    words = bitsets[rows[:, None], codes[None, :] >> 5]
    return ((words >> (codes[None, :] & 31).astype(np.uint32)) & 1).astype(bool)


@dataclass(frozen=True)
class _Head:
    """What one fitted head needs to score an encoded matrix."""

    estimator: Any
    categorical: tuple[str, ...]  # in the encoder's output order (first columns)
    numeric: tuple[str, ...]  # then these, as float64
    lookups: tuple[np.ndarray, ...]  # per categorical column: frame code + 1 -> encoder code
    bitsets: tuple[np.ndarray, np.ndarray]  # the known-categories bitsets and feature map
    forest: _Forest  # the same trees, for the all-trees-at-once evaluator

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
            if (table >= 256).any():  # sklearn casts codes to uint8
                raise ValueError(f"{name}: more categories than a uint8 code holds")
        bitsets = estimator._bin_mapper.make_known_categories_bitsets()
        forest = _Forest.build(estimator, *bitsets)
        return cls(estimator, categorical, numeric, tuple(lookups), bitsets, forest)

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

    def raw(self, enc: np.ndarray, all_trees_at_once: bool) -> np.ndarray:
        """Sum of the leaves over all trees, added as HistGradientBoosting._raw_predict does:
        walked by _Forest, or tree by tree with sklearn's predictor (large batches)."""
        if all_trees_at_once:
            return self.forest.raw(enc)
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
    numpy_max_rows: int = NUMPY_MAX_ROWS  # batches up to this size use _Forest

    @cached_property
    def shared_input(self) -> bool:
        """Both heads encode the features alike (then one encoded matrix serves both)."""
        return self.regressor.same_input(self.classifier)

    def predict(self, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(P(success), log1p(revenue)) from FeatureStep.transform_arrays' output."""
        enc = self.classifier.encode(columns)
        enc_reg = enc if self.shared_input else self.regressor.encode(columns)
        clf, reg = self.classifier.estimator, self.regressor.estimator
        at_once = len(enc) <= self.numpy_max_rows
        proba = clf._loss.predict_proba(self.classifier.raw(enc, at_once))[:, 1]
        log_revenue = reg._loss.link.inverse(self.regressor.raw(enc_reg, at_once).ravel())
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


def on_split_values(
    columns: Mapping[str, np.ndarray], heads: Iterable[_Head]
) -> dict[str, np.ndarray]:
    """`columns` plus rows whose numbers sit exactly on the heads' numeric split thresholds
    (where `<=` and `<` differ), the other columns cycling through their probe values."""
    at: dict[str, set[float]] = {}
    for head in heads:  # read from sklearn's nodes, not from the _Forest being verified
        k = len(head.categorical)
        for predictors in head.estimator._predictors:
            for predictor in predictors:
                nodes = predictor.nodes
                split = nodes[(nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 0)]
                for j, t in zip(split["feature_idx"], split["num_threshold"], strict=True):
                    at.setdefault(head.numeric[j - k], set()).add(float(t))
    extra = max((len(v) for v in at.values()), default=0)
    return {
        name: np.concatenate(
            [values, np.resize(sorted(at[name]) if name in at else values, extra)]
        ).astype(values.dtype)
        for name, values in columns.items()
    }


def disagreements(fast: FastHeads, model: Mapping[str, Any], feats: Any) -> list[str]:
    """The evaluators ("numpy": _Forest, "sklearn": per-tree predict) whose scores differ
    bitwise from the heads' predict_proba/predict on the probe: probe_columns plus rows on
    every numeric split threshold."""
    clf, reg = model["classifier"][-1], model["regressor"][-1]
    columns = on_split_values(probe_columns(feats), (fast.classifier, fast.regressor))
    frame = feats.as_frame(columns)
    proba, log_revenue = clf.predict_proba(frame)[:, 1], reg.predict(frame)
    wrong = []
    for name, numpy_rows in (("numpy", len(frame)), ("sklearn", 0)):
        got_proba, got_log_revenue = replace(fast, numpy_max_rows=numpy_rows).predict(columns)
        if not (
            np.array_equal(got_proba, proba, equal_nan=True)
            and np.array_equal(got_log_revenue, log_revenue, equal_nan=True)
        ):
            wrong.append(name)
    return wrong


def build(model: Mapping[str, Any], feats: Any) -> FastHeads | None:
    """FastHeads for a model whose heads share `feats`, or None (with the reason logged) when
    sklearn's internals are not what this path expects or either evaluator does not
    reproduce the heads."""
    clf, reg = model["classifier"][-1], model["regressor"][-1]
    try:
        dtypes = {name: feats._category_dtype(name) for name in CATEGORICAL}
        fast = FastHeads(_Head.build(clf, dtypes), _Head.build(reg, dtypes))
        wrong = disagreements(fast, model, feats)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        log.warning("scoring: fast path unavailable (%s); using the sklearn pipelines", exc)
        return None
    if wrong:
        log.warning(
            "scoring: fast path (%s evaluator) does not reproduce the model; using the sklearn"
            " pipelines",
            " and ".join(wrong),
        )
        return None
    return fast
