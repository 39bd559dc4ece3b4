from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stages.core.cli import UserError
from stages.core.io import write_parquet
from stages.core.params import load_key, load_section
from stages.core.schema import POST_RELEASE
from stages.model.artifact import Model, load_model, load_model_isolated, save_model
from stages.model.fit import (
    choose_threshold,
    expanding_window,
    fit_model,
    head,
    log_revenue,
    thresholds_from,
)
from stages.prepare import PrepareParams, prepare
from stages.sources.sample import map_sample, read_sample
from stages.train import train
from tests.conftest import (
    ROOT,
    SNAPSHOT,
    baseline_cpu_env,
    fixture_split,
    small_train_params,
    tool_env,
)

PARAMS = small_train_params()
SPLIT = fixture_split()


@pytest.fixture
def train_df(records: Callable[..., list[dict[str, Any]]]) -> pd.DataFrame:
    return prepare(records(), SPLIT, SNAPSHOT).train


def test_same_seed_gives_same_probabilities(train_df: pd.DataFrame) -> None:
    a, b = train(train_df, PARAMS), train(train_df, PARAMS)
    np.testing.assert_array_equal(
        a.success_probability(a.encode(train_df)), b.success_probability(b.encode(train_df))
    )


def test_model_records_its_training(train_df: pd.DataFrame) -> None:
    model = train(train_df, PARAMS)
    assert model.train_rows == len(train_df)
    assert model.params == PARAMS
    assert model.baselines.logreg_budget.classes_.tolist() == [0, 1]


def test_a_file_of_another_shape_is_not_a_model(tmp_path: Path) -> None:
    import skops.io as sio

    (tmp_path / "dict.skops").write_bytes(sio.dumps({"classifier": 1}))
    with pytest.raises(UserError) as err:
        load_model(tmp_path / "dict.skops")
    assert str(err.value) == (
        f"{tmp_path / 'dict.skops'}: not a model written by the train stage "
        "(its contents are not a model's); rebuild it"
    )


def test_model_round_trips_through_skops(tmp_path: Path, train_df: pd.DataFrame) -> None:
    model = train(train_df, PARAMS)
    save_model(tmp_path / "m.skops", model)
    loaded = load_model(tmp_path / "m.skops")
    assert isinstance(loaded, Model)
    np.testing.assert_array_equal(
        loaded.success_probability(loaded.encode(train_df)),
        model.success_probability(model.encode(train_df)),
    )
    np.testing.assert_array_equal(
        loaded.baselines.logreg_budget.predict_proba(train_df),
        model.baselines.logreg_budget.predict_proba(train_df),
    )
    assert loaded.threshold == model.threshold
    assert loaded.params == model.params


def test_serving_records_without_post_release_values_are_scored(train_df: pd.DataFrame) -> None:
    model = train(train_df, PARAMS)
    serving = train_df.assign(**dict.fromkeys(POST_RELEASE)).drop(columns=["success"])
    np.testing.assert_array_equal(model.encode(serving), model.encode(train_df))
    assert np.isfinite(model.log_revenue(model.encode(serving))).all()


def test_threshold_is_chosen_on_out_of_time_train_years_only(train_df: pd.DataFrame) -> None:
    model = train(train_df, PARAMS)
    years = sorted(set(train_df["release_date"].dt.year))
    assert list(model.threshold_years) == years[-3:]
    oot = expanding_window(train_df, years[-3:], PARAMS, regress=False)
    assert set(oot["year"]) == set(years[-3:])
    assert model.threshold == thresholds_from(oot)["model"]
    assert model.baselines.logreg_budget_threshold == thresholds_from(oot)["logreg_budget"]


def test_choose_threshold_maximises_f1() -> None:
    y = np.array([0, 0, 1, 0, 1, 1])
    proba = np.array([0.1, 0.2, 0.3, 0.4, 0.8, 0.9])
    cut = choose_threshold(y, proba)
    # best F1 predicts the top two (F1 0.8) or the top 4 (F1 0.857): the latter wins
    assert cut == pytest.approx(0.25)
    assert choose_threshold(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5


def test_a_feature_copying_the_label_stops_training(train_df: pd.DataFrame) -> None:
    """The leakage guard: budget made a function of the outcome trips the 0.9 check."""
    leaky = train_df.assign(budget=np.where(train_df["success"] == 1, 90_000_000, 1_000_000))
    leaky = leaky.assign(revenue=np.where(leaky["success"] == 1, 1, 0) * leaky["budget"] * 3 + 1)
    with pytest.raises(UserError, match="leaks the outcome"):
        train(leaky, replace(PARAMS, threshold_years=0))


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


def test_heads_score_the_feature_matrix_with_nothing_in_between(train_df: pd.DataFrame) -> None:
    """The heads are plain estimators on the feature step's matrix: refitting one on
    Model.encode gives the model's own scores, and scikit-learn keeps no per-call
    preprocessing (no categorical encoder) inside them."""
    model = fit_model(train_df, PARAMS)
    X = model.encode(train_df)
    clf = head(PARAMS).fit(X, train_df["success"].to_numpy())
    np.testing.assert_array_equal(clf.predict_proba(X)[:, 1], model.success_probability(X))
    regressor = head(PARAMS, "regress").fit(X, log_revenue(train_df))
    np.testing.assert_array_equal(regressor.predict(X), model.log_revenue(X))
    assert model.classifier.is_categorical_ is None  # documented: None without categories
    assert model.regressor.is_categorical_ is None


def test_isolated_load_gives_the_same_model_and_the_same_errors(
    tmp_path: Path, train_df: pd.DataFrame
) -> None:
    """The service's child-process load: same scores, the shared feature step still shared,
    and a bad file still one UserError."""
    model = train(train_df, PARAMS)
    save_model(tmp_path / "m.skops", model)
    loaded = load_model_isolated(tmp_path / "m.skops")
    np.testing.assert_array_equal(loaded.encode(train_df), model.encode(train_df))
    np.testing.assert_array_equal(
        loaded.success_probability(loaded.encode(train_df)),
        model.success_probability(model.encode(train_df)),
    )
    with pytest.raises(UserError, match="model not found"):
        load_model_isolated(tmp_path / "missing.skops")
    (tmp_path / "bad.skops").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a readable skops model"):
        load_model_isolated(tmp_path / "bad.skops")


def test_model_bytes_do_not_depend_on_the_cpu(tmp_path: Path) -> None:
    """`train` on the bundled sample writes the same archive with numpy's full SIMD dispatch
    and without it (and with generic OpenBLAS and glibc kernels)."""
    baseline = baseline_cpu_env()
    rows = read_sample(ROOT / "data/sample/movies.json.gz")
    split = load_section(PrepareParams, "prepare", ROOT / "params.yaml")
    snapshot = load_key(dt.date, "collect", "release_date_lte", ROOT / "params.yaml")
    train_df = prepare(map_sample(rows, "sample"), split, snapshot).train
    write_parquet(tmp_path / "train.parquet", train_df)
    runs = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stages.train",
                "--params",
                str(ROOT / "params.yaml"),
                "--train",
                str(tmp_path / "train.parquet"),
                "--model",
                str(tmp_path / name),
            ],
            env=env,
            cwd=tmp_path,
            stderr=subprocess.PIPE,
        )
        for name, env in (("full.skops", tool_env()), ("baseline.skops", baseline))
    }
    for proc in runs.values():
        _, err = proc.communicate()
        assert proc.returncode == 0, err.decode()
    assert (tmp_path / "full.skops").read_bytes() == (tmp_path / "baseline.skops").read_bytes()
