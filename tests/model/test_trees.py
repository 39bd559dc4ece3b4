"""The small-batch tree evaluator: bit for bit scikit-learn's public predict, or refused.

CI also runs this file on the next scikit-learn release (.github/workflows/code-quality.yml),
where a change in the internals it reads shows up as a refusal, not as wrong scores.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from stages.model.artifact import Model
from stages.model.features import MovieFeatures
from stages.model.trees import MAX_ROWS, Trees, compile_head, probe, public_predict
from tests.conftest import small_train_params

RNG = np.random.default_rng(7)


def data(n: int = 600, features: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Features with missing values (so NaN goes left at some nodes, right at others)."""
    X = RNG.normal(size=(n, features))
    X[RNG.random(X.shape) < 0.15] = np.nan
    y = np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, 1]) ** 2 + RNG.normal(0, 0.3, n)
    return X, y


def hostile_rows(n: int, features: int) -> np.ndarray:
    """Random rows with NaN, infinities, zeros and repeated values."""
    X = RNG.normal(size=(n, features)) * 3
    kinds = RNG.integers(0, 6, X.shape)
    X[kinds == 0] = np.nan
    X[kinds == 1] = np.inf
    X[kinds == 2] = -np.inf
    X[kinds == 3] = 0.0
    return X


def fitted_classifier(**params: object) -> HistGradientBoostingClassifier:
    X, y = data()
    head = HistGradientBoostingClassifier(max_iter=40, max_leaf_nodes=8, random_state=0)
    return head.set_params(**params).fit(X, y > np.median(y))


def fitted_regressor() -> HistGradientBoostingRegressor:
    X, y = data()
    return HistGradientBoostingRegressor(max_iter=40, max_leaf_nodes=8, random_state=0).fit(X, y)


@pytest.mark.parametrize("make", [fitted_classifier, fitted_regressor])
def test_scores_equal_the_public_predict_bit_for_bit(make: object) -> None:
    head = make()  # type: ignore[operator]  # one of the two factories above
    trees = compile_head(head)
    assert isinstance(trees, Trees), trees
    for n in (1, 2, 7, MAX_ROWS):
        X = hostile_rows(n, head.n_features_in_)
        assert trees.predict(X).tobytes() == public_predict(head, X).tobytes()


def test_rows_on_a_threshold_go_left_as_in_scikit_learn() -> None:
    head = fitted_regressor()
    trees = compile_head(head)
    assert isinstance(trees, Trees), trees
    internal = trees.left != np.arange(trees.left.size)
    X = np.zeros((int(internal.sum()), head.n_features_in_))
    X[np.arange(len(X)), trees.feature[internal]] = trees.threshold[internal]
    assert trees.predict(X).tobytes() == public_predict(head, X).tobytes()


def test_the_probe_rows_tell_a_strict_comparison_from_less_or_equal() -> None:
    """A wrong evaluator (here `<` instead of `<=`) is caught by the probe compile_head uses."""
    head = fitted_classifier()
    trees = compile_head(head)
    assert isinstance(trees, Trees), trees
    strict = dataclasses.replace(trees, threshold=np.nextafter(trees.threshold, -np.inf))
    X = probe(trees, head.n_features_in_)
    assert strict.predict(X).tobytes() != public_predict(head, X).tobytes()


def test_the_sum_keeps_scikit_learns_tree_order() -> None:
    """Summed pairwise (numpy's default) instead of in order, the last bits differ."""
    head = fitted_regressor()
    trees = compile_head(head)
    assert isinstance(trees, Trees), trees
    X = hostile_rows(MAX_ROWS, head.n_features_in_)
    leaves = [trees.value[_leaf(trees, X, t)] for t in range(trees.roots.size)]
    pairwise = trees.baseline + np.sum(np.stack(leaves, axis=1), axis=1)
    assert trees.raw(X).tobytes() == public_predict(head, X).tobytes()
    assert pairwise.tobytes() != trees.raw(X).tobytes()


def _leaf(trees: Trees, X: np.ndarray, tree: int) -> np.ndarray:
    """Tree `tree`'s leaf for each row, walked one row at a time (the reference walk)."""
    out = []
    for row in X:
        node = int(trees.roots[tree])
        while trees.left[node] != node:
            x = row[trees.feature[node]]
            left = trees.missing_left[node] if np.isnan(x) else x <= trees.threshold[node]
            node = int(trees.left[node] if left else trees.right[node])
        out.append(node)
    return np.asarray(out)


def test_a_head_with_categorical_splits_is_refused_with_the_reason() -> None:
    X, y = data()
    X[:, 0] = RNG.integers(0, 5, len(X))
    head = HistGradientBoostingClassifier(max_iter=10, categorical_features=[0]).fit(X, y > 0)
    assert compile_head(head) == (
        "scikit-learn's fitted trees are not readable (ValueError: categorical splits (the "
        "feature step emits numeric features only))"
    )


def test_a_multiclass_classifier_is_refused_with_the_reason() -> None:
    X, y = data()
    head = HistGradientBoostingClassifier(max_iter=5).fit(X, np.digitize(y, [-0.5, 0.5]))
    assert compile_head(head) == (
        "scikit-learn's fitted trees are not readable (ValueError: a classifier with loss "
        "'log_loss' on 3 classes)"
    )


def test_an_unfitted_head_is_refused_not_raised() -> None:
    assert compile_head(HistGradientBoostingRegressor()) == (
        "scikit-learn's fitted trees are not readable (AttributeError: "
        "'HistGradientBoostingRegressor' object has no attribute 'is_categorical_')"
    )


def test_a_model_without_the_evaluator_says_so_and_scores_on_the_public_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    params = small_train_params()
    X, y = data()
    X[:, 0] = RNG.integers(0, 5, len(X))
    categorical = HistGradientBoostingClassifier(max_iter=5, categorical_features=[0])
    caplog.set_level(logging.ERROR, logger="stages.model.artifact")
    model = Model(
        features=MovieFeatures(
            top_k_categories=params.top_k_categories,
            min_category_count=params.min_category_count,
            prior_strength=params.prior_strength,
            budget_years=params.budget_years,
        ),
        classifier=categorical.fit(X, y > 0),
        regressor=fitted_regressor(),
        baselines=None,  # type: ignore[arg-type]  # not read by scoring
        params=params,
    )
    assert model.fast_path == "off"
    (record,) = caplog.records
    assert record.getMessage().startswith(
        "fast tree evaluator off, scoring on scikit-learn's public predict (slower per request; "
        "model_info fast_path=off): classifier: scikit-learn's fitted trees are not readable"
    )
    rows = X[:3]
    expected = model.classifier.predict_proba(rows)[:, 1]
    assert model.success_probability(rows).tobytes() == expected.tobytes()
