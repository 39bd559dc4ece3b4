"""The vectorized MovieFeatures.transform against the plain per-row pandas version it replaced
(kept here as the oracle): identical frames on the bundled sample and on awkward records."""

from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import pandas as pd
import pytest

from stages.model.features import (
    CATEGORICAL,
    INPUT_FIELDS,
    OTHER,
    SEASONS,
    TRACK_KEYS,
    MovieFeatures,
)
from stages.prepare import PrepareParams, prepare
from stages.sources.sample import map_sample, read_sample
from tests.conftest import ROOT

SPLIT = PrepareParams(2.0, dt.date(2006, 1, 1), dt.date(2011, 12, 31), 10_000)


def reference_transform(feats: MovieFeatures, X: pd.DataFrame) -> pd.DataFrame:
    """The previous implementation: pandas column ops and one Python loop per row and key."""
    date = pd.to_datetime(X["release_date"])
    days = date.to_numpy("datetime64[D]").astype("int64")
    budget = pd.to_numeric(X["budget"], errors="coerce").astype("float64")
    log_budget = np.log1p(budget.where(budget > 0))
    first = X["production_companies"].map(lambda xs: xs[0] if len(xs) else None)
    company = X["distributor"].where(X["distributor"].notna(), first)
    hist = feats.history_
    trailing = np.full(len(days), np.nan)
    if len(hist["day"]):
        window = round(365.25 * feats.budget_years)
        for i, end in enumerate(np.minimum(days, hist["day"][-1] + 1)):
            with np.errstate(over="ignore"):  # a missing date's int64 minimum wraps around
                lo = np.searchsorted(hist["day"], end - window, side="left")
            hi = np.searchsorted(hist["day"], end, side="left")
            trailing[i] = float(np.median(hist["log_budget"][lo:hi])) if hi > lo else np.nan
    out = {
        "log_budget": log_budget,
        "budget_vs_trailing": log_budget - trailing,
        "release_year": date.dt.year.astype("float64"),
        "release_month": date.dt.month.astype("float64"),
        "release_weekday": date.dt.day_of_week.astype("float64"),
        "runtime": pd.to_numeric(X["runtime"], errors="coerce").astype("float64"),
        "is_sequel": (X["is_sequel"].fillna(False).astype(bool) | X["collection"].notna()).astype(
            "float64"
        ),
        "n_genres": X["genres"].map(len).astype("float64"),
        "n_cast": X["cast"].map(len).astype("float64"),
        "n_keywords": X["keywords"].map(len).astype("float64"),
        "n_companies": X["production_companies"].map(len).astype("float64"),
    }
    if feats.track_record:
        csum = np.concatenate([[0.0], np.cumsum(hist["log_roi"])])
        n_all = np.searchsorted(hist["day"], days, side="left")
        with np.errstate(invalid="ignore", divide="ignore"):
            prior_mean = np.where(n_all > 0, csum[n_all] / np.maximum(n_all, 1), np.nan)
        for kind in TRACK_KEYS:
            raw = X["director"] if kind == "director" else company
            keys = [v if isinstance(v, str) else "" for v in raw]
            films, roi = np.zeros(len(keys)), prior_mean.copy()
            for i, key in enumerate(keys):
                rows = [j for j, k in enumerate(hist[kind]) if key and k == key]
                if not rows:
                    continue
                key_csum = np.concatenate([[0.0], np.cumsum(hist["log_roi"][rows])])
                n = int(np.searchsorted(hist["day"][rows], days[i], side="left"))
                films[i] = n
                if n and np.isfinite(prior_mean[i]):
                    m = feats.prior_strength
                    roi[i] = (key_csum[n] + m * prior_mean[i]) / (n + m)
            out[f"{kind}_prior_films"] = pd.Series(films, index=X.index)
            out[f"{kind}_prior_log_roi"] = pd.Series(roi, index=X.index)
    genre_sets = X["genres"].map(set)
    for g in feats.genres_:
        out[f"genre_{g}"] = genre_sets.map(lambda s, g=g: g in s).astype("float64")
    raw_cat = {
        "certification": X["certification"],
        "distributor": company,
        "source_material": X["source_material"],
        "creative_type": X["creative_type"],
        "language": X["original_language"],
        "season": date.dt.month.map(lambda m: SEASONS[int(m) - 1] if m == m else None),
    }
    for name in CATEGORICAL:
        known = feats.categories_[name]
        col = raw_cat[name]
        values = col.where(col.isin(known), OTHER).where(col.notna())
        out[name] = pd.Categorical(values, categories=[*known, OTHER])
    return pd.DataFrame(out, index=X.index)[list(feats.feature_names_out_)]


@pytest.fixture(scope="module")
def sample() -> tuple[pd.DataFrame, pd.DataFrame]:
    path = ROOT / "data" / "sample" / "movies.json.gz"
    out = prepare(map_sample(read_sample(path), str(path)), SPLIT)
    return out.train, out.test


@pytest.mark.parametrize("track_record", [True, False])
def test_same_frame_as_the_reference_on_the_bundled_sample(
    sample: tuple[pd.DataFrame, pd.DataFrame], track_record: bool
) -> None:
    train, test = sample
    feats = MovieFeatures(top_k=20, min_count=10, track_record=track_record).fit(train)
    for df in (train, test, test.iloc[[5]], test.iloc[:0]):
        pd.testing.assert_frame_equal(feats.transform(df), reference_transform(feats, df))
        # as the scorer builds them: object columns, ISO date strings
        served = df.assign(release_date=df["release_date"].dt.strftime("%Y-%m-%d")).astype(object)
        pd.testing.assert_frame_equal(feats.transform(served), reference_transform(feats, df))
        as_str = df.assign(release_date=df["release_date"].dt.strftime("%Y-%m-%d").astype("str"))
        pd.testing.assert_frame_equal(feats.transform(as_str), reference_transform(feats, df))


def test_same_frame_as_the_reference_on_awkward_records(
    sample: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """Missing dates and keys, unknown keys, a distributor-less film, serving-style strings."""
    train, test = sample
    feats = MovieFeatures(top_k=20, min_count=10).fit(train)
    rows = test.head(8).copy()
    rows["release_date"] = rows["release_date"].astype(str)
    rows.loc[rows.index[0], "release_date"] = None
    rows.loc[rows.index[1], "director"] = None
    rows.loc[rows.index[2], "director"] = "Nobody Known"
    rows.loc[rows.index[3], "distributor"] = None
    rows.loc[rows.index[4], "certification"] = OTHER
    rows.loc[rows.index[5], "release_date"] = "1900-01-01"  # before every history film
    rows.loc[rows.index[6], "release_date"] = "2099-12-31"  # after every history film
    rows["budget"] = rows["budget"].astype(object)
    rows.loc[rows.index[7], "budget"] = None
    rows["runtime"] = [None, 90, 100.0, None, 0, 120, 95, 101]
    rows["runtime"] = rows["runtime"].astype(object)
    rows["is_sequel"] = [None, True, False, None, True, False, None, True]
    for part in (rows, rows.iloc[1:5], rows.iloc[[6]]):  # with/without a missing date
        pd.testing.assert_frame_equal(feats.transform(part), reference_transform(feats, part))
    big = pd.concat([rows] * 40, ignore_index=True)  # beyond SMALL: the vectorized paths
    pd.testing.assert_frame_equal(feats.transform(big), reference_transform(feats, big))


def test_the_lookup_cache_is_not_saved_and_is_rebuilt_after_refit(
    sample: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, test = sample
    feats = MovieFeatures(top_k=20, min_count=10).fit(train)
    before = feats.transform(test)
    assert "_key_index" in vars(feats)
    assert "_key_index" not in feats.__getstate__()
    copy = pickle.loads(pickle.dumps(feats))
    pd.testing.assert_frame_equal(copy.transform(test), before)
    early = train[train["release_date"] < pd.Timestamp("2000-01-01")]
    feats.fit(early)
    pd.testing.assert_frame_equal(feats.transform(test), reference_transform(feats, test))


def test_one_array_per_field_gives_the_frames_features(
    sample: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """What serving passes (a mapping of 1-D arrays, dates as datetime64[D]) gives exactly
    the features of the same records as a frame, for a small and a large batch."""
    train, test = sample
    feats = MovieFeatures(top_k=20, min_count=10).fit(train)
    for df in (test.head(3), test):
        arrays = {c: df[c].to_numpy() for c in INPUT_FIELDS}
        arrays["release_date"] = df["release_date"].to_numpy().astype("datetime64[D]")
        got, expected = feats.transform_arrays(arrays), feats.transform_arrays(df)
        assert got.keys() == expected.keys()
        for name in expected:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
        pd.testing.assert_frame_equal(
            feats.transform(arrays), feats.transform(df).reset_index(drop=True)
        )
