"""Pre-release features: one transformer shared by training and serving.

`transform` reads only fields in schema.PRE_RELEASE (INPUT_FIELDS); tests enforce it.
`fit` additionally reads the training films' revenue (HISTORY_FIELDS) to store their
track record: (release date, director, company, log-ROI). A film's track-record features
use only history rows released strictly before it, at training and prediction time alike,
so a training row never sees its own outcome or a later film's.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from stages.model import portable

CATEGORICAL = (
    "certification",
    "distributor",
    "source_material",
    "creative_type",
    "language",
    "season",
)
INPUT_FIELDS = (
    "release_date",
    "budget",
    "runtime",
    "genres",
    "certification",
    "distributor",
    "production_companies",
    "collection",
    "is_sequel",
    "original_language",
    "director",
    "cast",
    "keywords",
    "source_material",
    "creative_type",
)
# Read by fit() only, to store the training films' track record; never by transform().
HISTORY_FIELDS = ("revenue",)
# Keys whose prior films give track-record features.
TRACK_KEYS = ("director", "company")
OTHER = "__other__"
SEASONS = ("winter", "winter", "spring", "spring", "summer", "summer", "summer", "summer")
SEASONS += ("fall", "fall", "holiday", "holiday")  # index = month - 1
DAY_NS = 86_400 * 10**9


def _top_k(values: Iterable[str | None], k: int, min_count: int) -> list[str]:
    counts = Counter(v for v in values if isinstance(v, str) and v)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return sorted(v for v, c in ranked[:k] if c >= min_count)


def _primary_company(df: pd.DataFrame) -> pd.Series:
    """The distributor if known, else the first production company (TMDB has no distributor)."""
    first = df["production_companies"].map(lambda xs: xs[0] if len(xs) else None)
    return df["distributor"].where(df["distributor"].notna(), first)


def _keys(df: pd.DataFrame, kind: str) -> list[str]:
    """Track-record key per row; "" when unknown (unknown keys get no track record)."""
    raw = df["director"] if kind == "director" else _primary_company(df)
    return [v if isinstance(v, str) else "" for v in raw]


def _days(dates: pd.Series) -> np.ndarray:
    """Release dates as whole days since the epoch (int64)."""
    return pd.to_datetime(dates).to_numpy("datetime64[D]").astype("int64")


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
SMALL = 256  # batches up to this many rows take per-value Python paths (no pandas overhead)
DAYS = np.dtype("datetime64[D]")

# What transform_arrays reads: a DataFrame, or (serving, batch scoring) one 1-D array per
# input field, which skips pandas' per-column overhead.
Records: TypeAlias = pd.DataFrame | Mapping[str, np.ndarray]


def _column(X: Records, name: str) -> np.ndarray:
    values = X[name]
    return values.to_numpy() if isinstance(values, pd.Series) else values


def _day_array(dates: np.ndarray) -> np.ndarray:
    """pd.to_datetime(dates) as datetime64[D]; ISO 'YYYY-MM-DD' strings and day arrays (what
    serving sends) are converted by numpy directly, which gives the same days without pandas'
    format guessing or its nanosecond range limit."""
    if dates.dtype == DAYS:
        return dates
    if dates.dtype == object:
        values = dates.tolist()
        if all(isinstance(v, str) and _ISO_DAY.fullmatch(v) for v in values):
            try:
                return np.array(values, dtype=DAYS)
            except ValueError:
                pass  # e.g. 2010-02-30: let pandas raise its own error below
    return pd.to_datetime(dates).to_numpy(DAYS)


def _float_array(values: np.ndarray) -> np.ndarray:
    """pd.to_numeric(values, errors="coerce").astype("float64"); small object arrays of plain
    ints/floats/None are converted without pandas."""
    if values.dtype == object and len(values) <= SMALL:
        items = values.tolist()
        if all(v is None or type(v) in (int, float) for v in items):
            return np.array([np.nan if v is None else float(v) for v in items], dtype="float64")
    return np.asarray(pd.to_numeric(values, errors="coerce"), dtype="float64")


def log_budget(X: Records) -> np.ndarray:
    """log(1 + budget) of a positive budget, else NaN (the same bits on every CPU)."""
    budget = _float_array(_column(X, "budget"))
    with np.errstate(invalid="ignore"):
        positive = budget > 0
    return portable.log1p(np.where(positive, budget, np.nan))


def _flag_array(values: np.ndarray) -> np.ndarray:
    """values.fillna(False).astype(bool) as an array."""
    missing = pd.isna(values)
    return np.array([not m and bool(v) for v, m in zip(values, missing, strict=True)], dtype=bool)


def _primary_company_array(X: Records) -> np.ndarray:
    """_primary_company as an object array, without pandas' per-row map."""
    distributor = _column(X, "distributor").astype(object, copy=False)
    companies = _column(X, "production_companies")
    first = np.empty(len(companies), dtype=object)
    first[:] = [xs[0] if len(xs) else None for xs in companies]
    return np.where(pd.isna(distributor), first, distributor)


# Days are clipped into (-_OFFSET, _OFFSET) (far beyond any real date; NaT stays first) and
# offset, so that (group, day) pairs sort as one int64: group * _SPAN + day.
_OFFSET = 1 << 22
_SPAN = 1 << 24


def _clip_days(days: np.ndarray) -> np.ndarray:
    return np.clip(days, -_OFFSET + 1, _OFFSET - 1) + _OFFSET


@dataclass(frozen=True)
class _KeyIndex:
    """History films grouped by key, sorted by (key, day), with each key's cumulative log-ROI
    (summed in history order, exactly as a per-key np.cumsum)."""

    groups: dict[str, int]  # key -> group number
    code: np.ndarray  # sorted group * _SPAN + clipped day
    start: np.ndarray  # group -> first position in `code`
    csum: np.ndarray  # per group: [0, cumsum(log_roi)...], concatenated
    csum_start: np.ndarray  # group -> first position in `csum`

    @classmethod
    def build(cls, keys: list[str], days: np.ndarray, log_roi: np.ndarray) -> _KeyIndex:
        rows: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            if key:
                rows.setdefault(key, []).append(i)
        groups = {key: g for g, key in enumerate(rows)}
        codes, csums, starts, csum_starts = [], [], [], []
        at = at_csum = 0
        for g, idx in enumerate(rows.values()):
            codes.append(g * _SPAN + _clip_days(days[idx]))
            csums.append(np.concatenate([[0.0], np.cumsum(log_roi[idx])]))
            starts.append(at)
            csum_starts.append(at_csum)
            at += len(idx)
            at_csum += len(idx) + 1
        return cls(
            groups=groups,
            code=np.concatenate(codes) if codes else np.zeros(0, dtype=np.int64),
            start=np.array(starts, dtype=np.int64),
            csum=np.concatenate(csums) if csums else np.zeros(0),
            csum_start=np.array(csum_starts, dtype=np.int64),
        )


class MovieFeatures(TransformerMixin, BaseEstimator):
    """Turn normalized movie records into a numeric/categorical frame.

    prior_strength: pseudo-films that shrink a key's prior mean log-ROI toward the mean of all
    earlier films. budget_years: length of the trailing window for the median budget.
    """

    def __init__(
        self,
        top_k: int = 20,
        min_count: int = 5,
        prior_strength: float = 5.0,
        budget_years: int = 3,
        track_record: bool = True,
        use_runtime: bool = True,
    ) -> None:
        self.top_k = top_k
        self.min_count = min_count
        self.prior_strength = prior_strength
        self.budget_years = budget_years
        self.track_record = track_record
        self.use_runtime = use_runtime

    def fit(self, X: pd.DataFrame, y: object = None) -> MovieFeatures:
        X = self._check(X)
        self.__dict__.pop("_key_index", None)
        self.genres_ = sorted({g for gs in X["genres"] for g in gs})
        self.categories_ = {
            "certification": _top_k(X["certification"], self.top_k, self.min_count),
            "distributor": _top_k(_primary_company(X), self.top_k, self.min_count),
            "source_material": _top_k(X["source_material"], self.top_k, self.min_count),
            "creative_type": _top_k(X["creative_type"], self.top_k, self.min_count),
            "language": _top_k(X["original_language"], self.top_k, self.min_count),
            "season": sorted(set(SEASONS)),
        }
        self._fit_history(X)
        self.feature_names_out_ = np.array(self._columns(), dtype=object)
        return self

    def _fit_history(self, X: pd.DataFrame) -> None:
        """Store (day, keys, log budget, log-ROI) of the training films, sorted by day."""
        days = _days(X["release_date"])
        budget = log_budget(X)
        ok = np.isfinite(budget)
        log_roi = np.full(len(X), np.nan)
        if self.track_record:
            missing = [c for c in HISTORY_FIELDS if c not in X.columns]
            if missing:
                raise KeyError(f"fit needs the training films' {', '.join(missing)}")
            revenue = pd.to_numeric(X["revenue"], errors="coerce").astype("float64").to_numpy()
            log_roi = portable.log1p(np.where(revenue > 0, revenue, np.nan)) - budget
            ok &= np.isfinite(log_roi)
        rows = np.flatnonzero(ok)[np.argsort(days[ok], kind="stable")]
        self.history_ = {
            "day": days[rows],
            "log_budget": budget[rows],
            "log_roi": log_roi[rows],
        }
        for kind in TRACK_KEYS:
            keys = _keys(X, kind)
            self.history_[kind] = [keys[i] for i in rows]

    def _columns(self) -> list[str]:
        numeric = [
            "log_budget",
            "budget_vs_trailing",
            "release_year",
            "release_month",
            "release_weekday",
            *(["runtime"] if self.use_runtime else []),
            "is_sequel",
            "n_genres",
            "n_cast",
            "n_keywords",
            "n_companies",
        ]
        if self.track_record:
            for kind in TRACK_KEYS:
                numeric += [f"{kind}_prior_films", f"{kind}_prior_log_roi"]
        return numeric + [f"genre_{g}" for g in self.genres_] + list(CATEGORICAL)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return self.feature_names_out_

    def transform(self, X: Records) -> pd.DataFrame:
        """The feature frame: numeric columns float64, categorical ones pandas Categoricals
        with fixed categories (known values + OTHER; missing stays missing)."""
        index = X.index if isinstance(X, pd.DataFrame) else None
        return self.as_frame(self.transform_arrays(X), index)

    def as_frame(self, columns: Mapping[str, np.ndarray], index: Any = None) -> pd.DataFrame:
        """transform_arrays' output (categorical columns as codes) as transform's frame."""
        out = {
            name: (
                pd.Categorical.from_codes(columns[name], dtype=self._category_dtype(name))
                if name in CATEGORICAL
                else columns[name]
            )
            for name in self.feature_names_out_
        }
        return pd.DataFrame(out, index=index)

    def transform_arrays(self, X: Records) -> dict[str, np.ndarray]:
        """transform's columns as plain arrays, categorical ones as their integer codes (-1 =
        missing): what a scorer that skips pandas (stages/scoring/fastpath.py) reads. X is a
        frame or one array per input field (a mapping skips pandas altogether).

        Vectorized (numpy over whole columns, lookups precomputed once per fitted object), so
        a one-film batch is cheap and a large batch scales linearly."""
        X = self._check(X)
        dates = _day_array(_column(X, "release_date"))
        n = len(dates)
        nat = np.isnat(dates)
        days = dates.astype("int64")
        budget = log_budget(X)
        out: dict[str, Any] = {
            "log_budget": budget,
            "budget_vs_trailing": budget - self._trailing_median_budget(days),
        }
        year = dates.astype("datetime64[Y]")
        month = (dates.astype("datetime64[M]") - year).astype("int64") + 1
        out["release_year"] = np.where(nat, np.nan, year.astype("int64") + 1970.0)
        out["release_month"] = np.where(nat, np.nan, month.astype("float64"))
        out["release_weekday"] = np.where(nat, np.nan, ((days + 3) % 7).astype("float64"))
        out["runtime"] = _float_array(_column(X, "runtime"))
        collection = ~pd.isna(_column(X, "collection"))
        out["is_sequel"] = (_flag_array(_column(X, "is_sequel")) | collection).astype("float64")
        for col, name in (
            ("genres", "n_genres"),
            ("cast", "n_cast"),
            ("keywords", "n_keywords"),
            ("production_companies", "n_companies"),
        ):
            out[name] = np.fromiter(map(len, _column(X, col)), dtype="float64", count=n)
        company = _primary_company_array(X)
        director = _column(X, "director").astype(object, copy=False)
        if self.track_record:
            prior_mean = self._prior_mean(days)
            for kind, keys in (("director", director), ("company", company)):
                films, roi = self._track_record(kind, keys, days, prior_mean)
                out[f"{kind}_prior_films"] = films
                out[f"{kind}_prior_log_roi"] = roi
        onehot = self._genre_matrix(_column(X, "genres"))
        for j, g in enumerate(self.genres_):
            out[f"genre_{g}"] = onehot[:, j]
        season = np.array([None, *SEASONS], dtype=object)[np.where(nat, 0, month)]
        raw = {
            "certification": _column(X, "certification").astype(object, copy=False),
            "distributor": company,
            "source_material": _column(X, "source_material").astype(object, copy=False),
            "creative_type": _column(X, "creative_type").astype(object, copy=False),
            "language": _column(X, "original_language").astype(object, copy=False),
            "season": season,
        }
        for name in CATEGORICAL:  # a category's code, else missing (-1) or OTHER
            other = len(self._category_dtype(name).categories) - 1
            codes = np.fromiter(
                map(self._category_codes(name).get, raw[name], itertools.repeat(other)),
                dtype=np.intp,
                count=n,
            )
            codes[pd.isna(raw[name])] = -1
            out[name] = codes
        return {name: out[name] for name in self.feature_names_out_}

    def _trailing_median_budget(self, days: np.ndarray) -> np.ndarray:
        """Median log budget of history films in the `budget_years` before the film (or before
        the end of the history, when the film is later than every history film)."""
        hist_days = self.history_["day"]
        hist_budget = self.history_["log_budget"]
        if len(hist_days) == 0:
            return np.full(len(days), np.nan)
        ends, inverse = np.unique(np.minimum(days, hist_days[-1] + 1), return_inverse=True)
        known: dict[int, float] = self._cache().setdefault("trailing_median", {})  # by end day
        new = np.array([e for e in ends.tolist() if e not in known], dtype=ends.dtype)
        window = round(365.25 * self.budget_years)
        los = np.searchsorted(hist_days, new - window, side="left")
        his = np.searchsorted(hist_days, new, side="left")
        for end, lo, hi in zip(new.tolist(), los, his, strict=True):
            known[end] = float(np.median(hist_budget[lo:hi])) if hi > lo else np.nan
        medians = np.array([known[e] for e in ends.tolist()], dtype=np.float64)
        return medians[inverse.reshape(-1)]

    def _prior_mean(self, days: np.ndarray) -> np.ndarray:
        """Mean log-ROI of all history films released strictly before each day."""
        hist_days = self.history_["day"]
        cache = self._cache()
        if "prior_csum" not in cache:
            cache["prior_csum"] = np.concatenate([[0.0], np.cumsum(self.history_["log_roi"])])
        csum = cache["prior_csum"]
        n = np.searchsorted(hist_days, days, side="left")
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, csum[n] / np.maximum(n, 1), np.nan)

    def _cache(self) -> dict[str, Any]:
        """Lookups derived from the fitted state, built on first use: not saved with the model
        (__getstate__ drops them) and dropped by fit."""
        cache: dict[str, Any] = self.__dict__.setdefault("_key_index", {})
        return cache

    def _lookup(self, kind: str) -> _KeyIndex:
        """The per-key history index, built once per fitted object."""
        cache = self._cache()
        if kind not in cache:
            cache[kind] = _KeyIndex.build(
                self.history_[kind], self.history_["day"], self.history_["log_roi"]
            )
        return cache[kind]

    def _category_dtype(self, name: str) -> pd.CategoricalDtype:
        """The output dtype of a categorical column (known values + OTHER), built once."""
        cache = self._cache()
        key = f"categories:{name}"
        if key not in cache:
            cache[key] = pd.CategoricalDtype([*self.categories_[name], OTHER])
        return cache[key]

    def _genre_matrix(self, genres: np.ndarray) -> np.ndarray:
        """(row, genre) 1.0 where the row lists the fitted genre (others are ignored)."""
        column = {g: j for j, g in enumerate(self.genres_)}
        counts = np.fromiter(map(len, genres), dtype=np.intp, count=len(genres))
        listed = itertools.chain.from_iterable(genres)
        cols = np.fromiter(
            map(column.get, listed, itertools.repeat(-1)), dtype=np.intp, count=counts.sum()
        )
        rows = np.repeat(np.arange(len(genres)), counts)
        onehot = np.zeros((len(genres), len(self.genres_)))
        onehot[rows[cols >= 0], cols[cols >= 0]] = 1.0
        return onehot

    def _category_codes(self, name: str) -> dict[str, int]:
        """Category -> code of a categorical output column, built once."""
        cache = self._cache()
        key = f"codes:{name}"
        if key not in cache:
            categories = self._category_dtype(name).categories
            cache[key] = {str(v): i for i, v in enumerate(categories)}
        return cache[key]

    def _track_record(
        self, kind: str, keys: np.ndarray, days: np.ndarray, prior_mean: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(number of earlier films, shrunk mean log-ROI of earlier films) per row; a key
        with no history (missing, empty or not a string) has none."""
        index = self._lookup(kind)  # its groups hold non-empty strings only
        group = np.fromiter(
            map(index.groups.get, keys, itertools.repeat(-1)), dtype=np.int64, count=len(keys)
        )
        known = group >= 0
        g = group[known]
        start = index.start[g]
        pos = np.searchsorted(index.code, g * _SPAN + _clip_days(days[known]), side="left")
        n = pos - start
        films = np.zeros(len(keys))
        films[known] = n
        roi = prior_mean.copy()
        m = self.prior_strength
        pm = prior_mean[known]
        csum = index.csum[index.csum_start[g] + n]
        with np.errstate(invalid="ignore"):
            shrunk = (csum + m * pm) / (n + m)
        use = (n > 0) & np.isfinite(pm)
        sub = roi[known]
        sub[use] = shrunk[use]
        roi[known] = sub
        return films, roi

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_key_index", None)
        return state

    @staticmethod
    def _check(X: Records) -> Records:
        missing = [c for c in INPUT_FIELDS if c not in X]
        if missing:
            raise KeyError(f"missing input fields: {', '.join(missing)}")
        return X
