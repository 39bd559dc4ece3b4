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

Two evaluators sum the trees, both verified by `build`, both numpy: `_Forest` walks every
tree of a head at once, one gather per tree level (cheapest for a request's few rows), and
`_Tables` narrows each tree's reachable leaves column by column with precomputed bitmask
tables (cheapest for batches: a few passes over contiguous arrays, where sklearn's own
per-tree `TreePredictor.predict` costs one call and an OpenMP region per tree). The batch
size picks one: see FOREST_MAX_ROWS.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from stages.model.features import CATEGORICAL, INPUT_FIELDS

log = logging.getLogger(__name__)

PROBE_ROWS = 64
# Largest batch walked by _Forest; larger ones use _Tables. Measured on models/model.skops
# (2 heads x 150 trees of 8 leaves), CPU ms for both heads, medians (`python -m bench
# fastpath`): 1 row 0.34 vs 0.90, 16 rows 0.89 vs 0.80, 64 rows 2.0 vs 1.0, 256 rows 6.8 vs 1.6.
FOREST_MAX_ROWS = 16
MAX_LEAVES = 64  # _Tables keeps one bit per leaf in a uint64 at most
MASK_TYPES = (np.uint8, np.uint16, np.uint32, np.uint64)
TABLES_BLOCK = 2048  # rows per _Tables pass: its working arrays stay in the caches
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
class _Tables:
    """The trees of both heads as tables, evaluated an input column at a time for all trees
    (QuickScorer's idea with numpy gathers). Each tree's leaves are the bits of a mask: a
    split that sends a row left rules out the leaves under its right child, and vice versa.
    Per input column, the row's value is reduced to a rank (numbers: how many of the
    column's split thresholds lie below it, NaN one past them; categories: _Forest's uint8
    code, 256 for missing), and a table row per rank holds, per tree, the AND of what that
    column's splits rule out. AND-ing over the columns leaves the one reachable leaf, whose
    value is added in sklearn's order (bitwise the same sum). The heads share one pass: one
    rank per value and one lookup per column for all their trees."""

    n_categorical: int  # the first columns of the encoded matrix hold category codes
    thresholds: tuple[np.ndarray, ...]  # per column: the heads' numeric thresholds, sorted
    masks: tuple[tuple[int, np.ndarray], ...]  # (column, (n_ranks, n_trees) leaf masks)
    leaf_values: np.ndarray  # float64 per tree: leaf bit b's value at b, or at 1 << b for
    # uint8 masks (then the one-leaf mask indexes it directly)
    leaf_sets: np.ndarray  # per tree: the mask of all its leaves (where each row starts)
    heads: tuple[tuple[slice, np.ndarray], ...]  # per head: its trees, its baseline (1, k)

    @classmethod
    def build(cls, forests: Sequence[_Forest], n_categorical: int, n_columns: int) -> _Tables:
        under: dict[tuple[int, int], int] = {}  # (forest, node) -> mask of the leaves under it
        leaf_bits: dict[tuple[int, int], tuple[int, int]] = {}  # leaf -> (tree, bit)
        heads, first = [], 0
        for f, forest in enumerate(forests):
            split = forest.splits()
            right, left = forest.children[0::2], forest.children[1::2]
            ends = np.append(forest.roots[1:], len(split))
            for tree, (start, end) in enumerate(zip(forest.roots, ends, strict=True)):
                leaves = [i for i in range(start, end) if not split[i]]
                if len(leaves) > MAX_LEAVES:
                    raise ValueError(f"a tree has {len(leaves)} leaves (tables: {MAX_LEAVES})")
                for b, i in enumerate(leaves):
                    under[f, i], leaf_bits[f, i] = 1 << b, (first + tree, b)
                for i in reversed(range(start, end)):  # sklearn appends children after parents
                    if split[i]:
                        under[f, i] = under[f, left[i]] | under[f, right[i]]
            inner = np.flatnonzero(split)
            if (forest.categorical[inner] != (forest.feature[inner] < n_categorical)).any():
                raise ValueError("a split's kind does not match its column")
            heads.append((slice(first, first + len(forest.roots)), forest.baseline))
            first += len(forest.roots)
        width = max(b for _, b in leaf_bits.values()) + 1
        dtype = next(d for d in MASK_TYPES if np.iinfo(d).bits >= width)
        full = int(np.iinfo(dtype).max)  # in a table: no leaf ruled out
        numeric = [
            (f.feature[i], f.threshold[i])
            for f in forests
            for i in np.flatnonzero(f.splits() & ~f.categorical)
        ]
        thresholds = tuple(
            np.unique(np.array([t for j, t in numeric if j == column], dtype=np.float64))
            for column in range(n_columns)
        )
        tables: dict[int, np.ndarray] = {}
        for f, forest in enumerate(forests):
            right, left = forest.children[0::2], forest.children[1::2]
            tree_of = np.searchsorted(forest.roots, np.arange(len(left)), side="right") - 1
            for s in np.flatnonzero(forest.splits()):
                j = int(forest.feature[s])
                if forest.categorical[s]:
                    start = forest.table_start[s]
                    goes_left = forest.go_left[start : start + MISSING_CODE + 1]
                else:
                    k = int(np.searchsorted(thresholds[j], forest.threshold[s]))
                    ranks = np.arange(len(thresholds[j]) + 2)
                    missing = ranks > len(thresholds[j])
                    goes_left = np.where(missing, forest.missing_left[s], ranks <= k)
                table = tables.setdefault(j, np.full((len(goes_left), first), full, dtype=dtype))
                keep_left, keep_right = full & ~under[f, right[s]], full & ~under[f, left[s]]
                table[:, heads[f][0].start + tree_of[s]] &= np.where(
                    goes_left, dtype(keep_left), dtype(keep_right)
                )
        by_mask = dtype is np.uint8
        values = np.zeros((first, 256 if by_mask else width))
        for (f, i), (tree, b) in leaf_bits.items():
            values[tree, 1 << b if by_mask else b] = forests[f].value[i]
        leaf_sets = np.zeros(first, dtype=dtype)
        for f, forest in enumerate(forests):
            for tree, root in enumerate(forest.roots):
                leaf_sets[heads[f][0].start + tree] = under[f, int(root)]
        return cls(
            n_categorical,
            thresholds,
            tuple(sorted(tables.items())),
            values,
            leaf_sets,
            tuple(heads),
        )

    def ranks(self, enc: np.ndarray) -> np.ndarray:
        """(column, row) intp: each value's rank among its column's thresholds, or its
        category code as _Forest reads it."""
        out = np.empty((enc.shape[1], len(enc)), dtype=np.intp)
        k = self.n_categorical
        codes = enc[:, :k].T
        out[:k] = np.where((codes >= 0) & (codes < 256), codes, MISSING_CODE)
        for j in range(k, enc.shape[1]):
            thresholds, x = self.thresholds[j], enc[:, j]
            out[j] = np.searchsorted(thresholds, x)
            out[j][np.isnan(x)] = len(thresholds) + 1
        return out

    def raw(self, enc: np.ndarray, block: int = TABLES_BLOCK) -> list[np.ndarray]:
        """Per head, like sklearn's raw predictions (baseline, then each tree's leaf added in
        sklearn's order), `block` rows at a time."""
        n_trees, width = self.leaf_values.shape
        values = self.leaf_values.ravel()
        by_mask = self.leaf_sets.dtype == np.uint8
        offsets = np.arange(n_trees, dtype=np.intp)[:, None] * width - (0 if by_mask else 1)
        out = [np.empty((len(enc), base.shape[1]), order="F") for _, base in self.heads]
        for lo in range(0, len(enc), block):
            rank = self.ranks(enc[lo : lo + block])
            reach = np.tile(self.leaf_sets, (rank.shape[1], 1))  # (row, tree)
            for j, table in self.masks:
                reach &= table[rank[j]]
            reach = np.ascontiguousarray(reach.T)  # (tree, row)
            if by_mask:
                leaf = reach.astype(np.intp)
            else:  # the one bit left is a power of two: frexp gives its position + 1, exactly
                leaf = np.frexp(reach.astype(np.float64))[1].astype(np.intp)
            leaf += offsets
            leaves = values[leaf]
            for (trees, base), raw in zip(self.heads, out, strict=True):
                acc = np.zeros((base.shape[1], rank.shape[1]))
                acc += base.T
                for tree in range(trees.stop - trees.start):
                    acc[tree % base.shape[1]] += leaves[trees.start + tree]
                raw[lo : lo + rank.shape[1]] = acc.T
        return out


@dataclass(frozen=True)
class _Head:
    """What one fitted head needs to score an encoded matrix."""

    estimator: Any
    categorical: tuple[str, ...]  # in the encoder's output order (first columns)
    numeric: tuple[str, ...]  # then these, as float64
    lookups: tuple[np.ndarray, ...]  # per categorical column: frame code + 1 -> encoder code
    forest: _Forest  # the trees, walked together for small batches

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
        forest = _Forest.build(estimator, *estimator._bin_mapper.make_known_categories_bitsets())
        return cls(estimator, categorical, numeric, tuple(lookups), forest)

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


@dataclass(frozen=True)
class FastHeads:
    """P(success) and log1p(revenue) from the feature step's arrays, without pandas or the
    heads' per-call sklearn preprocessing. The heads encode the features alike (train fits
    them on one feature frame): one encoded matrix serves both."""

    classifier: _Head
    regressor: _Head
    tables: _Tables  # both heads' trees, for batches over forest_max_rows
    forest_max_rows: int = FOREST_MAX_ROWS  # batches up to this size use each _Forest

    @classmethod
    def build(cls, classifier: _Head, regressor: _Head) -> FastHeads:
        if not regressor.same_input(classifier):
            raise ValueError("the heads encode the features differently")
        width = len(classifier.categorical) + len(classifier.numeric)
        forests = (classifier.forest, regressor.forest)
        return cls(
            classifier, regressor, _Tables.build(forests, len(classifier.categorical), width)
        )

    def raw(self, enc: np.ndarray, evaluator: str) -> tuple[np.ndarray, np.ndarray]:
        """Both heads' sums of leaves over their trees, as HistGradientBoosting._raw_predict
        adds them, by the evaluator named ("forest" or "tables")."""
        if evaluator == "forest":
            return self.classifier.forest.raw(enc), self.regressor.forest.raw(enc)
        raw_classifier, raw_regressor = self.tables.raw(enc)
        return raw_classifier, raw_regressor

    def predict(self, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(P(success), log1p(revenue)) from FeatureStep.transform_arrays' output."""
        enc = self.classifier.encode(columns)
        evaluator = "forest" if len(enc) <= self.forest_max_rows else "tables"
        raw_classifier, raw_regressor = self.raw(enc, evaluator)
        proba = self.classifier.estimator._loss.predict_proba(raw_classifier)[:, 1]
        log_revenue = self.regressor.estimator._loss.link.inverse(raw_regressor.ravel())
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
    """The evaluators ("forest": _Forest, "tables": _Tables) whose scores differ bitwise from
    the heads' predict_proba/predict on the probe: probe_columns plus rows on every numeric
    split threshold."""
    clf, reg = model["classifier"][-1], model["regressor"][-1]
    columns = on_split_values(probe_columns(feats), (fast.classifier, fast.regressor))
    frame = feats.as_frame(columns)
    proba, log_revenue = clf.predict_proba(frame)[:, 1], reg.predict(frame)
    wrong = []
    for name, forest_rows in (("forest", len(frame)), ("tables", 0)):
        got_proba, got_log_revenue = replace(fast, forest_max_rows=forest_rows).predict(columns)
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
        fast = FastHeads.build(_Head.build(clf, dtypes), _Head.build(reg, dtypes))
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
