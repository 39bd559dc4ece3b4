"""Pre-release features: one transformer shared by training and serving.

Only fields in schema.PRE_RELEASE are read here; tests enforce it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

CATEGORICAL = ("certification", "distributor", "source_material", "creative_type", "language")
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
    "cast",
    "keywords",
    "source_material",
    "creative_type",
)
OTHER = "__other__"


def _top_k(values: Iterable[str | None], k: int, min_count: int) -> list[str]:
    counts = Counter(v for v in values if isinstance(v, str) and v)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return sorted(v for v, c in ranked[:k] if c >= min_count)


def _primary_company(df: pd.DataFrame) -> pd.Series:
    """The distributor if known, else the first production company (TMDB has no distributor)."""
    first = df["production_companies"].map(lambda xs: xs[0] if len(xs) else None)
    return df["distributor"].where(df["distributor"].notna(), first)


class MovieFeatures(TransformerMixin, BaseEstimator):
    """Turn normalized movie records into a numeric/categorical frame for gradient boosting."""

    def __init__(self, top_k: int = 20, min_count: int = 5) -> None:
        self.top_k = top_k
        self.min_count = min_count

    def fit(self, X: pd.DataFrame, y: object = None) -> MovieFeatures:
        X = self._check(X)
        self.genres_ = sorted({g for gs in X["genres"] for g in gs})
        self.categories_ = {
            "certification": _top_k(X["certification"], self.top_k, self.min_count),
            "distributor": _top_k(_primary_company(X), self.top_k, self.min_count),
            "source_material": _top_k(X["source_material"], self.top_k, self.min_count),
            "creative_type": _top_k(X["creative_type"], self.top_k, self.min_count),
            "language": _top_k(X["original_language"], self.top_k, self.min_count),
        }
        self.feature_names_out_ = np.array(self._columns(), dtype=object)
        return self

    def _columns(self) -> list[str]:
        numeric = [
            "log_budget",
            "release_year",
            "release_month",
            "release_weekday",
            "runtime",
            "is_sequel",
            "n_genres",
            "n_cast",
            "n_keywords",
            "n_companies",
        ]
        return numeric + [f"genre_{g}" for g in self.genres_] + list(CATEGORICAL)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return self.feature_names_out_

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        X = self._check(X)
        date = pd.to_datetime(X["release_date"])
        budget = pd.to_numeric(X["budget"], errors="coerce").astype("float64")
        out = {
            "log_budget": np.log1p(budget.where(budget > 0)),
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
        genre_sets = X["genres"].map(set)
        for g in self.genres_:
            out[f"genre_{g}"] = genre_sets.map(lambda s, g=g: g in s).astype("float64")
        raw = {
            "certification": X["certification"],
            "distributor": _primary_company(X),
            "source_material": X["source_material"],
            "creative_type": X["creative_type"],
            "language": X["original_language"],
        }
        for name in CATEGORICAL:
            known = self.categories_[name]
            values = raw[name].where(raw[name].isin(known), OTHER).where(raw[name].notna())
            out[name] = pd.Categorical(values, categories=[*known, OTHER])
        frame = pd.DataFrame(out, index=X.index)
        return frame[list(self.feature_names_out_)]

    @staticmethod
    def _check(X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in INPUT_FIELDS if c not in X.columns]
        if missing:
            raise KeyError(f"missing input fields: {', '.join(missing)}")
        return X
