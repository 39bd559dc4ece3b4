"""The serving fast path: bitwise the same scores as the sklearn pipelines, or not used."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

from stages.api import fastpath
from stages.api.scoring import FAST_PATH, prepare_model, score, shared_features
from stages.collect import map_sample, read_sample
from stages.lib.features import MovieFeatures
from stages.lib.modeling import fit_heads
from stages.prepare import prepare
from tests.conftest import ROOT, fixture_split, small_train_params

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
        np.testing.assert_array_equal(fast.predicted_revenue, np.maximum(np.expm1(log_rev), 0))
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
