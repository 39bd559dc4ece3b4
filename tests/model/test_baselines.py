"""The budget-only baselines: the optimum scikit-learn's solvers approximate, by exact means."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from stages.model.baselines import BudgetLinear, BudgetLogistic
from stages.prepare import prepare
from tests.conftest import SNAPSHOT, fixture_split


@pytest.fixture
def train_df(records: Callable[..., list[dict[str, Any]]]) -> pd.DataFrame:
    return prepare(records(), fixture_split(), SNAPSHOT).train


def log_budget(df: pd.DataFrame) -> np.ndarray:
    return np.log1p(df["budget"].to_numpy(float)).reshape(-1, 1)


def test_logistic_matches_scikit_learns_default_fit(train_df: pd.DataFrame) -> None:
    x = log_budget(train_df)
    z = (x - x.mean()) / x.std()
    y = train_df["success"].to_numpy()
    want = LogisticRegression(tol=1e-10).fit(z, y)
    got = BudgetLogistic().fit(train_df, y)
    assert got.coef_ == pytest.approx(want.coef_[0, 0], rel=1e-6)
    assert got.intercept_ == pytest.approx(want.intercept_[0], rel=1e-6)
    np.testing.assert_allclose(got.predict_proba(train_df), want.predict_proba(z), rtol=1e-6)


def test_line_matches_least_squares(train_df: pd.DataFrame) -> None:
    y = np.log1p(train_df["revenue"].to_numpy(float))
    want = LinearRegression().fit(log_budget(train_df), y)
    got = BudgetLinear().fit(train_df, y)
    assert got.coef_ == pytest.approx(want.coef_[0], rel=1e-9)
    np.testing.assert_allclose(got.predict(train_df), want.predict(log_budget(train_df)))


def test_a_missing_budget_is_scored_at_the_training_median(train_df: pd.DataFrame) -> None:
    y = train_df["success"].to_numpy()
    model = BudgetLogistic().fit(train_df, y)
    median = float(np.median(log_budget(train_df)))
    at_median = train_df.head(1).assign(budget=round(np.expm1(median)))
    missing = train_df.head(1).assign(budget=None)
    np.testing.assert_allclose(
        model.predict_proba(missing), model.predict_proba(at_median), rtol=1e-9
    )
