from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stages.core.schema import POST_RELEASE, PRE_RELEASE
from stages.model.features import CATEGORICAL, HISTORY_FIELDS, INPUT_FIELDS, OTHER, MovieFeatures
from stages.model.fit import MAX_LABEL_CORRELATION, label_correlations
from stages.prepare import prepare
from stages.sources.sample import map_sample, read_sample
from tests.conftest import ROOT, SNAPSHOT, fixture_split, make_record

SPLIT = fixture_split()


def make_features(**overrides: Any) -> MovieFeatures:
    """An unfitted feature step with small-data settings, `overrides` applied."""
    settings: dict[str, Any] = {
        "top_k_categories": 5,
        "min_category_count": 2,
        "prior_strength": 5.0,
        "budget_years": 3,
    }
    return MovieFeatures(**(settings | overrides))


def frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    out = prepare(records, SPLIT, SNAPSHOT)
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
    feats = make_features().fit(df)
    shuffled = df.assign(
        revenue=df["revenue"].sample(frac=1, random_state=1).to_numpy(),
        vote_count=0,
        vote_average=0.0,
    )
    pd.testing.assert_frame_equal(feats.frame(df), feats.frame(shuffled))


def test_transform_works_on_serving_records_without_post_release_values(
    records: Callable[..., list[dict[str, Any]]],
) -> None:
    """Serving builds a frame with every schema field and the post-release ones None."""
    df = frame(records())
    feats = make_features().fit(df)
    serving = df.assign(**dict.fromkeys(POST_RELEASE)).drop(columns=["success"])
    pd.testing.assert_frame_equal(feats.frame(df), feats.frame(serving))
    no_post = df.drop(columns=[*POST_RELEASE, "success"])
    pd.testing.assert_frame_equal(feats.frame(df), feats.frame(no_post))


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
    a = make_features().fit(df).frame(df[~future])
    b = make_features().fit(shuffled).frame(df[~future])
    pd.testing.assert_frame_equal(a, b)
    # ...and the shuffle does reach later films' track record, so the check has teeth
    c = make_features().fit(df).frame(df[future])
    d = make_features().fit(shuffled).frame(df[future])
    assert not c["director_prior_log_roi"].equals(d["director_prior_log_roi"])


def test_own_and_same_day_outcomes_do_not_enter_a_films_features(
    records: Callable[..., list[dict[str, Any]]],
) -> None:
    df = frame(records())
    day = df["release_date"].iloc[150]
    same_day = df["release_date"] == day
    changed = df.assign(revenue=df["revenue"].where(~same_day, 1))
    a = make_features().fit(df).frame(df[same_day])
    b = make_features().fit(changed).frame(df[same_day])
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
    out = (
        make_features(top_k_categories=20, min_category_count=1, prior_strength=2.0)
        .fit(df)
        .frame(df)
    )
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
    feats = make_features(budget_years=100).fit(df)
    late = df.tail(1).assign(release_date=pd.Timestamp("2030-01-01"))
    out = feats.frame(late)
    median = np.median(np.log1p(df["budget"].to_numpy(float)))
    assert out["budget_vs_trailing"].iloc[0] == pytest.approx(
        np.log1p(float(late["budget"].iloc[0])) - median
    )


def test_unseen_category_maps_to_other(records: Callable[..., list[dict[str, Any]]]) -> None:
    df = frame(records())
    feats = make_features().fit(df)
    row = feats.frame(df.head(1).assign(certification="NC-17"))
    flags = row.filter(like="certification=").iloc[0]
    assert flags[f"certification={OTHER}"] == 1.0
    assert flags.sum() == 1.0


def test_runtime_is_used_when_its_known_ness_does_not_follow_the_outcome(
    records: Callable[..., list[dict[str, Any]]],
) -> None:
    df = frame(records())
    y = df["success"].to_numpy()
    assert "runtime" in make_features().fit(df, y).frame(df)
    flops_lack_it = df.assign(runtime=df["runtime"].where(y == 1, None))
    feats = make_features().fit(flops_lack_it, y)
    assert feats.runtime_gap_ == 1.0
    assert "runtime" not in feats.frame(df)


def test_a_field_no_training_film_fills_is_left_out(
    records: Callable[..., list[dict[str, Any]]],
) -> None:
    """TMDB never sets a distributor: no constant column, no 'lowest company id' stand-in."""
    df = frame(records()).assign(distributor=None, certification=None)
    feats = make_features().fit(df)
    names = set(feats.get_feature_names_out())
    left_out = {"cast_prior_films", "company_prior_films"}
    assert left_out.isdisjoint(names)
    assert not [n for n in names if n.startswith(("distributor=", "certification="))]
    assert feats.categorical_names == ["source_material", "creative_type", "season"]
    assert "director_prior_films" in names
    assert feats.empty_fields_ == [
        "cast",
        "certification",
        "collection",
        "distributor",
        "original_language",
        "production_companies",
    ]


def test_a_collection_makes_a_sequel_only_after_its_first_film() -> None:
    """TMDB attaches a collection to every film of a franchise, the first one included."""
    recs = [
        make_record(1, title="Saga", collection="Saga Collection", release_date="2001-05-01"),
        make_record(
            2, title="Saga Returns", collection="Saga Collection", release_date="2003-05-01"
        ),
        make_record(3, title="Alone", release_date="2002-01-01"),
        make_record(4, title="Other", release_date="2008-01-01"),
    ]
    for rec in recs:
        rec["is_sequel"] = False
    df = frame(recs)
    X = make_features(min_category_count=1).fit(df).frame(df).set_index(df["id"])
    assert X.loc[1, "is_sequel"] == 0.0
    assert X.loc[2, "is_sequel"] == 1.0
    assert X.loc[2, "collection_prior_films"] == 1
    assert X.loc[3, "is_sequel"] == 0.0


def test_cast_and_companies_pool_the_earlier_films_of_all_their_members() -> None:
    budget = 10_000_000
    recs = [
        make_record(1, cast=["Ann", "Bob"], release_date="2000-01-01", revenue=4 * budget),
        make_record(
            2, cast=["Bob", "Cid", "Dee", "Eve"], release_date="2001-01-01", revenue=budget
        ),
        make_record(3, cast=["Ann", "Bob", "Cid"], release_date="2002-01-01", revenue=budget),
        make_record(
            4, cast=["Zed", "Yul", "Xan", "Eve"], release_date="2002-02-01", revenue=budget
        ),
        make_record(5, release_date="2008-01-01"),
    ]
    for rec in recs:
        rec["budget"] = budget
        rec["revenue"] = rec["revenue"] if rec["id"] == 1 else budget
    df = frame(recs)
    X = make_features(prior_strength=0.0).fit(df).frame(df).set_index(df["id"])
    # film 3: Ann has film 1; Bob films 1 and 2; Cid film 2 -> 4 earlier appearances
    assert X.loc[3, "cast_prior_films"] == 4
    rois = np.log1p(np.array([4.0, 1.0]) * budget) - np.log1p(budget)
    assert X.loc[3, "cast_prior_log_roi"] == pytest.approx((2 * rois[0] + 2 * rois[1]) / 4)
    # film 4: Eve was 5th-billed in film 2 (not top-billed), so nothing counts
    assert X.loc[4, "cast_prior_films"] == 0


def test_no_feature_nearly_copies_the_label_on_the_bundled_sample() -> None:
    """The leakage guard on real data: every feature's |corr| with the label stays <= 0.9."""
    sample = ROOT / "data" / "sample" / "movies.json.gz"
    train = prepare(map_sample(read_sample(sample), str(sample)), SPLIT, SNAPSHOT).train
    feats = make_features(top_k_categories=20, min_category_count=10).fit(train)
    corr = label_correlations(feats.frame(train), train["success"].to_numpy())
    assert {"log_budget", "director_prior_log_roi", "company_prior_log_roi"} <= set(corr)
    worst = max(corr, key=corr.__getitem__)
    assert corr[worst] <= MAX_LABEL_CORRELATION, worst
    # a post-release field would fail the same check: revenue/budget nearly is the label
    leaky = pd.DataFrame({"log_roi": np.log(train["revenue"] / train["budget"])})
    assert label_correlations(leaky, train["success"].to_numpy())["log_roi"] > 0.7


@pytest.fixture(scope="module")
def sample() -> tuple[pd.DataFrame, pd.DataFrame]:
    path = ROOT / "data" / "sample" / "movies.json.gz"
    out = prepare(map_sample(read_sample(path), str(path)), SPLIT, SNAPSHOT)
    return out.train, out.test


def test_categories_are_one_hot_columns_and_unknown_is_missing(
    sample: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """One column per fitted category and OTHER: exactly one 1.0 for a known value, all 0
    for an unknown one, so the heads need no encoder of their own."""
    train, test = sample
    feats = make_features(top_k_categories=20, min_category_count=10).fit(train)
    X = feats.frame(test)
    assert feats.categorical_names == [c for c in CATEGORICAL if c != "language"]
    for name in feats.categorical_names:
        group = X[[f"{name}={v}" for v in feats.categories(name)]]
        known = test["certification"].notna() if name == "certification" else None
        assert set(group.sum(axis=1)) <= {0.0, 1.0}, name
        if known is not None:
            assert ((group.sum(axis=1) == 1.0) == known.to_numpy()).all()


def test_one_array_per_field_gives_the_frames_features(
    sample: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """What the scorers pass (a mapping of 1-D arrays, dates as datetime64[D]) gives exactly
    the features of the same records as a frame, for a small and a large batch."""
    train, test = sample
    feats = make_features(top_k_categories=20, min_category_count=10).fit(train)
    for df in (test.head(3), test):
        arrays = {c: df[c].to_numpy() for c in INPUT_FIELDS}
        arrays["release_date"] = df["release_date"].to_numpy().astype("datetime64[D]")
        np.testing.assert_array_equal(feats.transform(arrays), feats.transform(df))


def test_awkward_records_are_features_not_errors(
    sample: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """Missing dates and keys, unknown keys, a distributor-less film, dates before and after
    every history film, text dates: the same features whether given as frame or arrays."""
    train, test = sample
    feats = make_features(top_k_categories=20, min_category_count=10).fit(train)
    rows = test.head(8).copy()
    rows["release_date"] = rows["release_date"].astype(str)
    rows.loc[rows.index[0], "release_date"] = None
    rows.loc[rows.index[1], "director"] = None
    rows.loc[rows.index[2], "director"] = "Nobody Known"
    rows.loc[rows.index[3], "distributor"] = None
    rows.loc[rows.index[4], "certification"] = OTHER
    rows.loc[rows.index[5], "release_date"] = "1900-01-01"
    rows.loc[rows.index[6], "release_date"] = "2099-12-31"
    rows["budget"] = rows["budget"].astype(object)
    rows.loc[rows.index[7], "budget"] = None
    rows["runtime"] = pd.Series([None, 90, 100.0, None, 0, 120, 95, 101], dtype=object).values
    rows["is_sequel"] = pd.Series([None, True, False, None, True, False, None, True]).values
    X = feats.frame(rows)
    assert np.isnan(X["release_year"].iloc[0])
    assert np.isnan(X["log_budget"].iloc[7])
    assert X["director_prior_films"].iloc[2] == 0
    assert X["director_prior_films"].iloc[5] == 0  # nothing is earlier than 1900
    assert np.isfinite(X["director_prior_log_roi"].iloc[6])  # after all history: the prior
    arrays = {c: rows[c].to_numpy() for c in INPUT_FIELDS}
    np.testing.assert_array_equal(feats.transform(arrays), X.to_numpy())


def test_the_lookup_cache_is_not_saved_and_is_rebuilt_after_refit(
    sample: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, test = sample
    feats = make_features(top_k_categories=20, min_category_count=10).fit(train)
    before = feats.transform(test)
    assert "_key_index" in vars(feats)
    assert "_key_index" not in feats.__getstate__()
    copy = pickle.loads(pickle.dumps(feats))
    np.testing.assert_array_equal(copy.transform(test), before)
    early = train[train["release_date"] < pd.Timestamp("2000-01-01")]
    refit = pickle.loads(pickle.dumps(feats)).fit(early)
    fresh = make_features(top_k_categories=20, min_category_count=10).fit(early)
    assert not np.array_equal(refit.transform(test), before, equal_nan=True)
    np.testing.assert_array_equal(refit.transform(test), fresh.transform(test))
