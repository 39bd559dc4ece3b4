from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stages.core.schema import POST_RELEASE, PRE_RELEASE
from stages.model.features import HISTORY_FIELDS, INPUT_FIELDS, MovieFeatures
from stages.model.fit import MAX_LABEL_CORRELATION, label_correlations
from stages.prepare import PrepareParams, prepare
from stages.sources.sample import map_sample, read_sample
from tests.conftest import ROOT, make_record

SPLIT = PrepareParams(2.0, dt.date(2006, 1, 1), dt.date(2011, 12, 31), 10_000)


def frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    out = prepare(records, SPLIT)
    return pd.concat([out.train, out.test], ignore_index=True)


def test_reads_only_pre_release_fields() -> None:
    assert set(INPUT_FIELDS) <= set(PRE_RELEASE)
    assert not set(INPUT_FIELDS) & POST_RELEASE
    # revenue is read by fit() alone, for the track record of earlier films
    assert set(HISTORY_FIELDS) <= POST_RELEASE


def test_output_does_not_change_with_post_release_fields(
    records: Callable[..., list[dict[str, Any]]],
) -> None:
    df = frame(records())
    feats = MovieFeatures(top_k=5, min_count=2).fit(df)
    shuffled = df.assign(
        revenue=df["revenue"].sample(frac=1, random_state=1).to_numpy(),
        vote_count=0,
        vote_average=0.0,
    )
    pd.testing.assert_frame_equal(feats.transform(df), feats.transform(shuffled))


def test_transform_works_on_serving_records_without_post_release_values(
    records: Callable[..., list[dict[str, Any]]],
) -> None:
    """Serving builds a frame with every schema field and the post-release ones None."""
    df = frame(records())
    feats = MovieFeatures(top_k=5, min_count=2).fit(df)
    serving = df.assign(**dict.fromkeys(POST_RELEASE)).drop(columns=["success"])
    pd.testing.assert_frame_equal(feats.transform(df), feats.transform(serving))
    no_post = df.drop(columns=[*POST_RELEASE, "success"])
    pd.testing.assert_frame_equal(feats.transform(df), feats.transform(no_post))


def test_future_labels_do_not_change_past_features(
    records: Callable[..., list[dict[str, Any]]],
) -> None:
    """Shuffling the outcomes of films released from 2003 on leaves earlier films' features."""
    df = frame(records())
    cut = pd.Timestamp("2003-01-01")
    future = df["release_date"] >= cut
    rng = np.random.default_rng(0)
    shuffled = df.copy()
    shuffled.loc[future, "revenue"] = rng.permutation(df.loc[future, "revenue"].to_numpy())
    shuffled.loc[future, "revenue"] *= rng.integers(1, 50, future.sum())
    a = MovieFeatures(top_k=5, min_count=2).fit(df).transform(df[~future])
    b = MovieFeatures(top_k=5, min_count=2).fit(shuffled).transform(df[~future])
    pd.testing.assert_frame_equal(a, b)
    # ...and the shuffle does reach later films' track record, so the check has teeth
    c = MovieFeatures(top_k=5, min_count=2).fit(df).transform(df[future])
    d = MovieFeatures(top_k=5, min_count=2).fit(shuffled).transform(df[future])
    assert not c["director_prior_log_roi"].equals(d["director_prior_log_roi"])


def test_own_and_same_day_outcomes_do_not_enter_a_films_features(
    records: Callable[..., list[dict[str, Any]]],
) -> None:
    df = frame(records())
    day = df["release_date"].iloc[150]
    same_day = df["release_date"] == day
    changed = df.assign(revenue=df["revenue"].where(~same_day, 1))
    a = MovieFeatures(top_k=5, min_count=2).fit(df).transform(df[same_day])
    b = MovieFeatures(top_k=5, min_count=2).fit(changed).transform(df[same_day])
    pd.testing.assert_frame_equal(a, b)


def test_track_record_is_the_shrunk_mean_of_strictly_earlier_films() -> None:
    budget = 10_000_000
    recs = [
        make_record(1, director="Ann", release_date="2000-01-01", revenue=4 * budget),
        make_record(2, director="Ann", release_date="2001-01-01", revenue=1 * budget),
        make_record(3, director="Bob", release_date="2001-06-01", revenue=2 * budget),
        make_record(4, director="Ann", release_date="2002-01-01", revenue=9 * budget),
        make_record(5, director="Cid", release_date="2002-01-01", revenue=9 * budget),
        make_record(6, director="Dee", release_date="2007-01-01", revenue=9 * budget),
    ]
    for rec in recs:
        rec["budget"] = budget
    df = frame(recs)
    out = MovieFeatures(min_count=1, prior_strength=2.0).fit(df).transform(df)
    by_id = out.set_index(df["id"])
    rois = np.log1p(np.array([4, 1, 2]) * budget) - np.log1p(budget)
    prior = rois.mean()  # all three films before 2002-01-01
    expected = (rois[0] + rois[1] + 2.0 * prior) / (2 + 2.0)
    assert by_id.loc[4, "director_prior_films"] == 2
    assert by_id.loc[4, "director_prior_log_roi"] == pytest.approx(expected)
    assert by_id.loc[5, "director_prior_films"] == 0  # a newcomer gets the prior
    assert by_id.loc[5, "director_prior_log_roi"] == pytest.approx(prior)
    assert by_id.loc[1, "director_prior_films"] == 0
    assert np.isnan(by_id.loc[1, "director_prior_log_roi"])  # nothing is earlier


def test_budget_is_compared_with_the_trailing_median(
    records: Callable[..., list[dict[str, Any]]],
) -> None:
    df = frame(records())
    feats = MovieFeatures(top_k=5, min_count=2, budget_years=100).fit(df)
    late = df.tail(1).assign(release_date=pd.Timestamp("2030-01-01"))
    out = feats.transform(late)
    median = np.median(np.log1p(df["budget"].to_numpy(float)))
    assert out["budget_vs_trailing"].iloc[0] == pytest.approx(
        np.log1p(float(late["budget"].iloc[0])) - median
    )


def test_unseen_category_maps_to_other(records: Callable[..., list[dict[str, Any]]]) -> None:
    df = frame(records())
    feats = MovieFeatures(top_k=5, min_count=2).fit(df)
    row = df.head(1).assign(certification="NC-17")
    assert feats.transform(row)["certification"].iloc[0] == "__other__"


def test_runtime_is_optional(records: Callable[..., list[dict[str, Any]]]) -> None:
    df = frame(records())
    assert "runtime" in MovieFeatures(use_runtime=True).fit(df).transform(df)
    assert "runtime" not in MovieFeatures(use_runtime=False).fit(df).transform(df)


def test_no_feature_nearly_copies_the_label_on_the_bundled_sample() -> None:
    """The leakage guard on real data: every feature's |corr| with the label stays <= 0.9."""
    sample = ROOT / "data" / "sample" / "movies.json.gz"
    train = prepare(map_sample(read_sample(sample), str(sample)), SPLIT).train
    feats = MovieFeatures(top_k=20, min_count=10).fit(train)
    corr = label_correlations(feats.transform(train), train["success"].to_numpy())
    assert {"log_budget", "director_prior_log_roi", "company_prior_log_roi"} <= set(corr)
    worst = max(corr, key=corr.__getitem__)
    assert corr[worst] <= MAX_LABEL_CORRELATION, worst
    # a post-release field would fail the same check: revenue/budget nearly is the label
    leaky = pd.DataFrame({"log_roi": np.log(train["revenue"] / train["budget"])})
    assert label_correlations(leaky, train["success"].to_numpy())["log_roi"] > 0.7
