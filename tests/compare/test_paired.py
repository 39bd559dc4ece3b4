"""Paired bootstrap of two models' probabilities on the same rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from stages.compare.paired import compare_same_rows
from stages.core.cli import UserError

RNG = np.random.default_rng(3)
Y = RNG.integers(0, 2, 300)
GOOD = np.clip(Y * 0.4 + RNG.random(300) * 0.6, 0.01, 0.99)
NOISE = RNG.random(300)


def test_point_metrics_equal_sklearns() -> None:
    res = compare_same_rows(Y, NOISE, GOOD, rounds=50, seed=1)
    assert res.rows == 300
    assert res.get("roc_auc").head == pytest.approx(skm.roc_auc_score(Y, GOOD), abs=1e-6)
    assert res.get("pr_auc").base == pytest.approx(skm.average_precision_score(Y, NOISE), abs=1e-6)
    assert res.get("log_loss").head == pytest.approx(skm.log_loss(Y, GOOD), abs=1e-6)
    assert res.get("brier").head == pytest.approx(skm.brier_score_loss(Y, GOOD), abs=1e-6)


def test_same_model_twice_differs_by_exactly_zero() -> None:
    res = compare_same_rows(Y, GOOD, GOOD, rounds=50, seed=1)
    assert {(m.difference, m.lo, m.hi) for m in res.metrics} == {(0.0, 0.0, 0.0)}


def test_interval_is_of_the_difference_and_follows_the_seed() -> None:
    res = compare_same_rows(Y, NOISE, GOOD, rounds=200, seed=1)
    auc = res.get("roc_auc")
    assert auc.difference == pytest.approx(auc.head - auc.base, abs=1e-6)
    assert 0 < auc.lo < auc.difference < auc.hi
    assert compare_same_rows(Y, NOISE, GOOD, rounds=200, seed=1) == res
    assert compare_same_rows(Y, NOISE, GOOD, rounds=200, seed=2) != res


def test_pairing_narrows_the_interval_of_a_shared_score() -> None:
    """A head that is the base plus a little noise: the paired interval of the difference is
    far narrower than either model's own AUC spread over the same resamples would suggest."""
    head = np.clip(GOOD + RNG.normal(0, 0.01, 300), 0, 1)
    auc = compare_same_rows(Y, GOOD, head, rounds=200, seed=1).get("roc_auc")
    assert auc.hi - auc.lo < 0.02


def test_one_class_is_a_user_error() -> None:
    with pytest.raises(UserError) as err:
        compare_same_rows(np.ones(10), GOOD[:10], GOOD[:10], rounds=5, seed=1)
    assert str(err.value) == (
        "the 10 test films are all of one class: ROC AUC is undefined; "
        "check prepare's label and split"
    )
