"""Pre-release features: one transformer shared by training and serving.

`transform` reads only fields in schema.PRE_RELEASE (INPUT_FIELDS); tests enforce it.
`fit` additionally reads the training films' revenue (HISTORY_FIELDS) to store their
track record: (release date, director, company, log-ROI). A film's track-record features
use only history rows released strictly before it, at training and prediction time alike,
so a training row never sees its own outcome or a later film's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

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


def _log_budget(df: pd.DataFrame) -> pd.Series:
    budget = pd.to_numeric(df["budget"], errors="coerce").astype("float64")
    return np.log1p(budget.where(budget > 0))


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
        log_budget = _log_budget(X).to_numpy()
        ok = np.isfinite(log_budget)
        log_roi = np.full(len(X), np.nan)
        if self.track_record:
            missing = [c for c in HISTORY_FIELDS if c not in X.columns]
            if missing:
                raise KeyError(f"fit needs the training films' {', '.join(missing)}")
            revenue = pd.to_numeric(X["revenue"], errors="coerce").astype("float64").to_numpy()
            log_roi = np.log1p(np.where(revenue > 0, revenue, np.nan)) - log_budget
            ok &= np.isfinite(log_roi)
        rows = np.flatnonzero(ok)[np.argsort(days[ok], kind="stable")]
        self.history_ = {
            "day": days[rows],
            "log_budget": log_budget[rows],
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

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        X = self._check(X)
        date = pd.to_datetime(X["release_date"])
        days = _days(X["release_date"])
        log_budget = _log_budget(X)
        out = {
            "log_budget": log_budget,
            "budget_vs_trailing": log_budget - self._trailing_median_budget(days),
            "release_year": date.dt.year.astype("float64"),
            "release_month": date.dt.month.astype("float64"),
            "release_weekday": date.dt.day_of_week.astype("float64"),
            "runtime": pd.to_numeric(X["runtime"], errors="coerce").astype("float64"),
            "is_sequel": (
                X["is_sequel"].fillna(False).astype(bool) | X["collection"].notna()
            ).astype("float64"),
            "n_genres": X["genres"].map(len).astype("float64"),
            "n_cast": X["cast"].map(len).astype("float64"),
            "n_keywords": X["keywords"].map(len).astype("float64"),
            "n_companies": X["production_companies"].map(len).astype("float64"),
        }
        if self.track_record:
            prior_mean = self._prior_mean(days)
            for kind in TRACK_KEYS:
                films, roi = self._track_record(kind, _keys(X, kind), days, prior_mean)
                out[f"{kind}_prior_films"] = pd.Series(films, index=X.index)
                out[f"{kind}_prior_log_roi"] = pd.Series(roi, index=X.index)
        genre_sets = X["genres"].map(set)
        for g in self.genres_:
            out[f"genre_{g}"] = genre_sets.map(lambda s, g=g: g in s).astype("float64")
        months = date.dt.month
        raw = {
            "certification": X["certification"],
            "distributor": _primary_company(X),
            "source_material": X["source_material"],
            "creative_type": X["creative_type"],
            "language": X["original_language"],
            "season": months.map(lambda m: SEASONS[int(m) - 1] if m == m else None),
        }
        for name in CATEGORICAL:
            known = self.categories_[name]
            values = raw[name].where(raw[name].isin(known), OTHER).where(raw[name].notna())
            out[name] = pd.Categorical(values, categories=[*known, OTHER])
        frame = pd.DataFrame(out, index=X.index)
        return frame[list(self.feature_names_out_)]

    def _trailing_median_budget(self, days: np.ndarray) -> np.ndarray:
        """Median log budget of history films in the `budget_years` before the film (or before
        the end of the history, when the film is later than every history film)."""
        hist_days = self.history_["day"]
        hist_budget = self.history_["log_budget"]
        if len(hist_days) == 0:
            return np.full(len(days), np.nan)
        ends = np.minimum(days, hist_days[-1] + 1)
        out = np.full(len(days), np.nan)
        cache: dict[int, float] = {}
        window = round(365.25 * self.budget_years)
        for i, end in enumerate(ends):
            end = int(end)
            if end not in cache:
                lo = np.searchsorted(hist_days, end - window, side="left")
                hi = np.searchsorted(hist_days, end, side="left")
                cache[end] = float(np.median(hist_budget[lo:hi])) if hi > lo else np.nan
            out[i] = cache[end]
        return out

    def _prior_mean(self, days: np.ndarray) -> np.ndarray:
        """Mean log-ROI of all history films released strictly before each day."""
        hist_days = self.history_["day"]
        csum = np.concatenate([[0.0], np.cumsum(self.history_["log_roi"])])
        n = np.searchsorted(hist_days, days, side="left")
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, csum[n] / np.maximum(n, 1), np.nan)

    def _track_record(
        self, kind: str, keys: list[str], days: np.ndarray, prior_mean: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(number of earlier films, shrunk mean log-ROI of earlier films) per row."""
        groups: dict[str, list[int]] = {}
        for i, key in enumerate(self.history_[kind]):
            if key:
                groups.setdefault(key, []).append(i)
        hist_days = self.history_["day"]
        hist_roi = self.history_["log_roi"]
        index = {
            key: (hist_days[rows], np.concatenate([[0.0], np.cumsum(hist_roi[rows])]))
            for key, rows in groups.items()
        }
        films = np.zeros(len(keys))
        roi = prior_mean.copy()
        m = self.prior_strength
        for i, key in enumerate(keys):
            if not key or key not in index:
                continue
            key_days, csum = index[key]
            n = int(np.searchsorted(key_days, days[i], side="left"))
            films[i] = n
            if n and np.isfinite(prior_mean[i]):
                roi[i] = (csum[n] + m * prior_mean[i]) / (n + m)
        return films, roi

    @staticmethod
    def _check(X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in INPUT_FIELDS if c not in X.columns]
        if missing:
            raise KeyError(f"missing input fields: {', '.join(missing)}")
        return X


class LogBudget(TransformerMixin, BaseEstimator):
    """log(1 + budget) as the single column of the budget-only baselines (missing -> median)."""

    def fit(self, X: pd.DataFrame, y: object = None) -> LogBudget:
        self.median_ = float(np.nanmedian(_log_budget(X)))
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        return _log_budget(X).fillna(self.median_).to_numpy().reshape(-1, 1)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.array(["log_budget"], dtype=object)
