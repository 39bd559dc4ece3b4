"""The serving fast path: bitwise the same scores as the sklearn pipelines, or not used."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

from stages.model import portable
from stages.model.features import MovieFeatures
from stages.model.fit import fit_heads
from stages.prepare import prepare
from stages.scoring import fastpath
from stages.scoring.score import FAST_PATH, prepare_model, score, shared_features
from stages.sources.sample import map_sample, read_sample
from tests.conftest import ROOT, fixture_split, sklearn_raw, small_train_params

SPLIT = fixture_split()
# Larger than the fixture-sized params: the bundled sample's categories all get used.
PARAMS = dataclasses.replace(
    small_train_params(),
    seed=3,
    max_iter=40,
    max_leaf_nodes=15,
    min_samples_leaf=10,
    top_k_categories=20,
    min_category_count=5,
    threshold_years=0,
)


@pytest.fixture(scope="module")
def sample() -> tuple[pd.DataFrame, pd.DataFrame]:
    path = ROOT / "data" / "sample" / "movies.json.gz"
    out = prepare(map_sample(read_sample(path), str(path)), SPLIT)
    return out.train, out.test


@pytest.fixture(scope="module")
def model(sample: tuple[pd.DataFrame, pd.DataFrame]) -> dict[str, object]:
    train, _ = sample
    clf, reg = fit_heads(train, train["success"].to_numpy(), PARAMS, np.log1p(train["revenue"]))
    return {"classifier": clf, "regressor": reg, "threshold": 0.4}


def test_fast_path_scores_exactly_like_the_pipelines(
    model: dict[str, object], sample: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    prepared = prepare_model(model)
    assert isinstance(prepared[FAST_PATH], fastpath.FastHeads)
    train, test = sample
    odd = test.head(20).copy()  # unseen and missing categories, missing numbers
    odd["certification"] = ["NC-17", None] * 10
    odd["distributor"] = None
    odd["budget"] = [None, 0, *odd["budget"].iloc[2:]]
    for df in (train, test, test.head(1), odd):
        fast = score(prepared, df)
        proba = model["classifier"].predict_proba(df)[:, 1]  # type: ignore[attr-defined]
        log_rev = model["regressor"].predict(df)  # type: ignore[attr-defined]
        np.testing.assert_array_equal(fast.success_probability, proba)
        np.testing.assert_array_equal(
            fast.predicted_revenue, np.maximum(portable.expm1(log_rev), 0)
        )
        np.testing.assert_array_equal(fast.success, proba >= 0.4)


def test_heads_without_sklearns_expected_internals_use_the_pipelines(
    sample: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """Heads fitted on numeric features only have no categorical preprocessor: build refuses
    (and logs why) instead of guessing, so scoring keeps the public pipelines."""
    train, _ = sample
    feats = MovieFeatures(top_k=5, min_count=5).fit(train)
    numeric = [c for c in feats.get_feature_names_out() if not c.startswith(("cert", "distr"))]
    numeric = [c for c in numeric if c not in ("source_material", "creative_type")]
    numeric = [c for c in numeric if c not in ("language", "season")]
    Xt = feats.transform(train)[numeric]
    clf = HistGradientBoostingClassifier(max_iter=5).fit(Xt, train["success"])
    reg = HistGradientBoostingRegressor(max_iter=5).fit(Xt, np.log1p(train["revenue"]))
    model = {
        "classifier": Pipeline([("features", feats), ("model", clf)]),
        "regressor": Pipeline([("features", feats), ("model", reg)]),
        "threshold": 0.5,
    }
    assert shared_features(model) is feats
    assert fastpath.build(model, feats) is None
    assert prepare_model(model)[FAST_PATH] is None


def awkward_rows(head: Any, seed: int = 0) -> np.ndarray:
    """Encoded rows for `head`: each numeric split threshold exactly and one ulp either side,
    every uint8 categorical code (known, unknown to the head, fractional), negative codes
    and NaN everywhere; the other cells random."""
    forest, k = head.forest, len(head.categorical)
    width = k + len(head.numeric)
    specials = []
    for node in np.flatnonzero(forest.splits() & ~forest.categorical):
        t = forest.threshold[node]
        specials += [
            (forest.feature[node], v)
            for v in (t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf))
        ]
    for j in range(k):
        codes = [*np.arange(256.0), -1.0, -3.0, -0.5, 0.5, 2.75, np.nan]
        specials += [(j, v) for v in codes]
    specials += [(j, np.nan) for j in range(width)]
    rng = np.random.default_rng(seed)
    enc = np.empty((len(specials), width))
    enc[:, :k] = rng.integers(-1, 12, size=(len(specials), k))
    enc[:, k:] = rng.normal(0, 5, size=(len(specials), width - k))
    enc[rng.random(enc.shape) < 0.1] = np.nan
    for i, (j, v) in enumerate(specials):
        enc[i, j] = v
    return enc


@pytest.fixture(scope="module")
def fast(model: dict[str, Any]) -> fastpath.FastHeads:
    built = fastpath.build(model, shared_features(model))
    assert built is not None
    return built


@pytest.fixture(scope="module")
def narrow(sample: tuple[pd.DataFrame, pd.DataFrame]) -> fastpath.FastHeads:
    """Heads of trees with at most 8 leaves (as params.yaml's): uint8 leaf masks."""
    train, _ = sample
    params = dataclasses.replace(PARAMS, max_leaf_nodes=8)
    clf, reg = fit_heads(train, train["success"].to_numpy(), params, np.log1p(train["revenue"]))
    model = {"classifier": clf, "regressor": reg, "threshold": 0.5}
    built = fastpath.build(model, shared_features(model))
    assert built is not None
    return built


@pytest.mark.parametrize("evaluator", ["forest", "tables"])
@pytest.mark.parametrize("head", ["classifier", "regressor"])
@pytest.mark.parametrize("heads", ["fast", "narrow"])
def test_each_evaluator_sums_exactly_like_sklearns_trees(
    request: pytest.FixtureRequest, heads: str, head: str, evaluator: str
) -> None:
    """Bitwise: the walk, its NaN/categorical/threshold rules and the order of the sum."""
    built = request.getfixturevalue(heads)
    fitted = getattr(built, head)
    assert fitted.forest.categorical.any()  # the rows below reach categorical splits
    enc = awkward_rows(fitted)
    expected = sklearn_raw(fitted.estimator, enc)
    got = built.raw(enc, evaluator)[["classifier", "regressor"].index(head)]
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got.view(np.uint64), expected.view(np.uint64))


def test_tables_give_the_same_sums_whatever_their_block_size(fast: fastpath.FastHeads) -> None:
    enc = awkward_rows(fast.classifier)
    assert len(enc) > 3 * 7
    whole = fast.tables.raw(enc, block=len(enc))
    for got, expected in zip(fast.tables.raw(enc, block=7), whole, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_tables_hold_trees_in_the_narrowest_masks(
    fast: fastpath.FastHeads, narrow: fastpath.FastHeads
) -> None:
    """PARAMS' trees have up to 15 leaves: more than a uint8 mask holds."""
    leaves = (~fast.classifier.forest.splits()).sum() / len(fast.classifier.forest.roots)
    assert leaves > 8
    assert fast.tables.leaf_sets.dtype == np.uint16
    assert narrow.tables.leaf_sets.dtype == np.uint8


def test_small_and_large_batches_score_alike(
    fast: fastpath.FastHeads, model: dict[str, Any], sample: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    """A batch over the threshold (_Tables) and the same rows in batches under it (_Forest)
    give bitwise the same scores."""
    train, _ = sample
    columns = shared_features(model).transform_arrays(train)
    assert len(train) > 2 * fast.forest_max_rows
    whole = fast.predict(columns)
    size = fast.forest_max_rows
    parts = [
        fast.predict({k: v[i : i + size] for k, v in columns.items()})
        for i in range(0, len(train), size)
    ]
    for got, expected in zip(zip(*parts, strict=True), whole, strict=True):
        np.testing.assert_array_equal(np.concatenate(got).view(np.uint64), expected.view(np.uint64))


def test_verification_catches_an_all_trees_walk_off_by_an_ulp(
    model: dict[str, Any],
) -> None:
    """Thresholds one ulp low only change rows exactly on a split value: the probe has them."""
    built = fastpath.build(model, shared_features(model))
    assert built is not None
    assert fastpath.disagreements(built, model, shared_features(model)) == []
    threshold = built.classifier.forest.threshold
    threshold[:] = np.nextafter(threshold, -np.inf)
    assert fastpath.disagreements(built, model, shared_features(model)) == ["forest"]


def test_verification_catches_tables_off_by_an_ulp(model: dict[str, Any]) -> None:
    built = fastpath.build(model, shared_features(model))
    assert built is not None
    for thresholds in built.tables.thresholds:
        thresholds[:] = np.nextafter(thresholds, -np.inf)
    assert fastpath.disagreements(built, model, shared_features(model)) == ["tables"]


def test_verification_catches_tables_sending_categories_the_wrong_way(
    model: dict[str, Any],
) -> None:
    built = fastpath.build(model, shared_features(model))
    assert built is not None
    tables = built.tables
    categorical = [table for j, table in tables.masks if j < tables.n_categorical]
    assert categorical
    for table in categorical:
        table[:] = table[::-1].copy()  # codes read from the other end
    assert fastpath.disagreements(built, model, shared_features(model)) == ["tables"]


def test_heads_with_trees_too_wide_for_the_tables_use_the_pipelines(
    sample: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, _ = sample
    params = dataclasses.replace(PARAMS, max_iter=2, max_leaf_nodes=80, min_samples_leaf=2)
    clf, reg = fit_heads(train, train["success"].to_numpy(), params, np.log1p(train["revenue"]))
    assert max(p.nodes["is_leaf"].sum() for ps in clf[-1]._predictors for p in ps) > 64
    model = {"classifier": clf, "regressor": reg, "threshold": 0.5}
    assert fastpath.build(model, shared_features(model)) is None
