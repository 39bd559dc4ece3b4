from __future__ import annotations

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
from stages.core.params import load_section
from stages.core.schema import POST_RELEASE
from stages.model import portable
from stages.model.artifact import load_model, load_model_isolated, save_model
from stages.model.fit import (
    build_pipeline,
    choose_threshold,
    expanding_window,
    log_revenue,
    thresholds_from,
)
from stages.prepare import PrepareParams, prepare
from stages.scoring.score import Movie, movie_columns, prepare_model, score, shared_features
from stages.sources.sample import map_sample, read_sample
from stages.train import train
from tests.conftest import ROOT, baseline_cpu_env, fixture_split, small_train_params, tool_env

PARAMS = small_train_params()
SPLIT = fixture_split()


@pytest.fixture
def train_df(records: Callable[..., list[dict[str, Any]]]) -> pd.DataFrame:
    return prepare(records(), SPLIT).train


def test_same_seed_gives_same_probabilities(train_df: pd.DataFrame) -> None:
    a = train(train_df, PARAMS)["classifier"].predict_proba(train_df)
    b = train(train_df, PARAMS)["classifier"].predict_proba(train_df)
    np.testing.assert_array_equal(a, b)


def test_artefact_keeps_the_serving_keys_and_adds_baselines(train_df: pd.DataFrame) -> None:
    model = train(train_df, PARAMS)
    assert {"classifier", "regressor", "threshold", "params", "train_rows"} <= set(model)
    assert model["train_rows"] == len(train_df)
    assert model["params"]["max_iter"] == 20
    assert {"majority", "logreg_budget", "linear_budget"} <= set(model["baselines"])


def test_model_round_trips_through_skops(tmp_path: Path, train_df: pd.DataFrame) -> None:
    model = train(train_df, PARAMS)
    save_model(tmp_path / "m.skops", model)
    loaded = load_model(tmp_path / "m.skops")
    np.testing.assert_array_equal(
        loaded["classifier"].predict_proba(train_df), model["classifier"].predict_proba(train_df)
    )
    np.testing.assert_array_equal(
        loaded["baselines"]["logreg_budget"].predict_proba(train_df),
        model["baselines"]["logreg_budget"].predict_proba(train_df),
    )
    assert loaded["threshold"] == model["threshold"]


def test_serving_records_without_post_release_values_are_scored(train_df: pd.DataFrame) -> None:
    model = train(train_df, PARAMS)
    serving = train_df.assign(**dict.fromkeys(POST_RELEASE)).drop(columns=["success"])
    np.testing.assert_array_equal(
        model["classifier"].predict_proba(serving), model["classifier"].predict_proba(train_df)
    )
    assert np.isfinite(model["regressor"].predict(serving)).all()


def test_threshold_is_chosen_on_out_of_time_train_years_only(train_df: pd.DataFrame) -> None:
    model = train(train_df, PARAMS)
    years = sorted(set(train_df["release_date"].dt.year))
    assert model["threshold_years"] == years[-3:]
    oot = expanding_window(train_df, years[-3:], PARAMS, regress=False)
    assert set(oot["year"]) == set(years[-3:])
    assert model["threshold"] == thresholds_from(oot)["model"]
    assert model["baselines"]["logreg_budget_threshold"] == thresholds_from(oot)["logreg_budget"]


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


def test_heads_share_one_feature_step_and_score_like_separate_pipelines(
    tmp_path: Path, train_df: pd.DataFrame
) -> None:
    """One fitted feature step in both heads (stored once, transformed once when scoring),
    with the same numbers as two independently fitted Pipelines."""
    model = train(train_df, PARAMS)
    save_model(tmp_path / "m.skops", model)
    loaded = load_model(tmp_path / "m.skops")
    assert shared_features(loaded) is loaded["classifier"][0] is loaded["regressor"][0]
    y = train_df["success"].to_numpy()
    clf = build_pipeline(PARAMS).fit(train_df, y)
    reg = build_pipeline(PARAMS, "regress").fit(train_df, log_revenue(train_df))
    scores = score(loaded, train_df)
    np.testing.assert_array_equal(scores.success_probability, clf.predict_proba(train_df)[:, 1])
    np.testing.assert_array_equal(
        scores.success_probability, loaded["classifier"].predict_proba(train_df)[:, 1]
    )
    np.testing.assert_array_equal(
        scores.predicted_revenue, np.maximum(portable.expm1(reg.predict(train_df)), 0.0)
    )
    np.testing.assert_array_equal(
        scores.predicted_revenue,
        np.maximum(portable.expm1(loaded["regressor"].predict(train_df)), 0.0),
    )
    # a model whose heads do not share the step takes the whole-pipeline path, same numbers
    separate = dict(loaded, classifier=clf, regressor=reg)
    assert shared_features(separate) is None
    np.testing.assert_array_equal(
        score(separate, train_df).success_probability, scores.success_probability
    )


def test_pipelines_of_their_own_score_validated_movies_like_the_fast_path(
    train_df: pd.DataFrame,
) -> None:
    """Validated movies (arrays, no post-release fields) through a model whose heads are whole
    pipelines: completed into records, the same numbers as the shared step's fast path."""
    model = prepare_model(train(train_df, PARAMS))
    y = train_df["success"].to_numpy()
    separate = dict(
        model,
        classifier=build_pipeline(PARAMS).fit(train_df, y),
        regressor=build_pipeline(PARAMS, "regress").fit(train_df, log_revenue(train_df)),
    )
    assert shared_features(separate) is None
    movies = [
        Movie(title="A", release_date="2009-07-01", budget=30_000_000, genres=["Drama"]),
        Movie(title="B", release_date="2011-03-04", budget=5_000_000, director="Nobody"),
    ]
    columns = movie_columns(movies)
    got, fast = score(separate, columns), score(model, columns)
    np.testing.assert_array_equal(got.success_probability, fast.success_probability)
    np.testing.assert_array_equal(got.predicted_revenue, fast.predicted_revenue)


def test_isolated_load_gives_the_same_model_and_the_same_errors(
    tmp_path: Path, train_df: pd.DataFrame
) -> None:
    """The service's child-process load: same scores, the shared feature step still shared,
    and a bad file still one UserError."""
    model = train(train_df, PARAMS)
    save_model(tmp_path / "m.skops", model)
    loaded = load_model_isolated(tmp_path / "m.skops")
    assert loaded["classifier"][0] is loaded["regressor"][0]
    np.testing.assert_array_equal(
        loaded["classifier"].predict_proba(train_df), model["classifier"].predict_proba(train_df)
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
    write_parquet(tmp_path / "train.parquet", prepare(map_sample(rows, "sample"), split).train)
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
