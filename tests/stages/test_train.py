from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stages.lib.cli import UserError
from stages.lib.model_io import load_model, save_model
from stages.prepare import PrepareParams, prepare
from stages.train import TrainParams, train

PARAMS = TrainParams(
    seed=7,
    learning_rate=0.1,
    max_iter=20,
    max_leaf_nodes=7,
    min_samples_leaf=5,
    l2_regularization=0.0,
    top_k_categories=5,
    min_category_count=2,
    threshold=0.5,
)


@pytest.fixture
def train_df(records: Callable[..., list[dict[str, Any]]]) -> pd.DataFrame:
    split = PrepareParams(2.0, dt.date(2006, 1, 1), dt.date(2011, 12, 31), 10_000)
    return prepare(records(), split).train


def test_same_seed_gives_same_probabilities(train_df: pd.DataFrame) -> None:
    a = train(train_df, PARAMS)["classifier"].predict_proba(train_df)
    b = train(train_df, PARAMS)["classifier"].predict_proba(train_df)
    np.testing.assert_array_equal(a, b)


def test_model_round_trips_through_skops(tmp_path: Path, train_df: pd.DataFrame) -> None:
    model = train(train_df, PARAMS)
    save_model(tmp_path / "m.skops", model)
    loaded = load_model(tmp_path / "m.skops")
    np.testing.assert_array_equal(
        loaded["classifier"].predict_proba(train_df), model["classifier"].predict_proba(train_df)
    )
    assert loaded["threshold"] == 0.5


def test_single_class_is_a_user_error(train_df: pd.DataFrame) -> None:
    one_class = train_df.assign(success=1)
    with pytest.raises(UserError, match="train split has a single class"):
        train(one_class, PARAMS)


def test_missing_model_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        load_model(tmp_path / "none.skops")
    assert str(err.value) == (
        f"{tmp_path / 'none.skops'}: model not found; run 'make repro' (or 'dvc pull') first"
    )
