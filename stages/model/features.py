"""Pre-release features: one transformer shared by training and serving, one code path.

`transform` reads only INPUT_FIELDS (pre-release fields of stages.core.schema; tests enforce
it) and returns a plain float matrix: categories are one-hot columns `name=value`, all 0 when
the value is unknown (OTHER has its own column; unknown as NaN lets every split send it its
own way, which measured 0.02 ROC AUC worse on the sample). Why not integer codes with a
categorical mask: scikit-learn's gradient boosting then runs a ColumnTransformer on every
predict call, which costs more than its trees for a single film (bench/serve.py measures
scoring); one-hot columns keep scoring on the heads' public predict with nothing in between.

`fit` additionally reads the training films' revenue (HISTORY_FIELDS) to store their track
record: release day, keys (director, top-billed cast, companies, TMDB collection) and
log-ROI. A film's track-record features use only history films released strictly before it,
at training and prediction time alike, so a training row never sees its own outcome or a
later film's. That also makes the collection honest: TMDB attaches a collection to every
film of a franchise after the fact, but only a film with an earlier film in it is a sequel.

What a source never fills is left out, not fed in as a constant: `fit` drops every column
whose input fields are empty for all training films (one log line each), and runtime when
whether it is known depends on the outcome (a post-release artefact of the source).
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from stages.model import portable

log = logging.getLogger(__name__)

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
    "source_material",
    "creative_type",
)
# Read by fit() only, to store the training films' track record; never by transform().
HISTORY_FIELDS = ("revenue",)
# Keys whose earlier films give track-record features, and the input fields they come from.
TRACK_KEYS: dict[str, tuple[str, ...]] = {
    "director": ("director",),
    "cast": ("cast",),
    "company": ("distributor", "production_companies"),
    "collection": ("collection",),
}
TOP_BILLED = 3  # cast members (in billing order) whose earlier films count
# The input fields each column reads: a column is left out when all of them are empty.
CATEGORICAL_FIELDS = {
    "certification": ("certification",),
    "distributor": ("distributor",),
    "source_material": ("source_material",),
    "creative_type": ("creative_type",),
    "language": ("original_language",),
    "season": ("release_date",),
}
# Runtime is used only when its known-ness is (nearly) the same for successes and flops.
MAX_OUTCOME_COVERAGE_GAP = 0.05
OTHER = "__other__"
SEASONS: tuple[str, ...] = ("winter",) * 2 + ("spring",) * 2 + ("summer",) * 4
SEASONS += ("fall", "fall", "holiday", "holiday")  # index = month - 1
DAYS = np.dtype("datetime64[D]")

# What the feature step reads: a DataFrame (training) or one 1-D array per input field
# (scoring, stages.scoring), which skips pandas' per-column overhead.
Records: TypeAlias = pd.DataFrame | Mapping[str, np.ndarray]


def _column(X: Records, name: str) -> np.ndarray:
    values = X[name]
    return values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)


def _objects(X: Records, name: str) -> np.ndarray:
    return _column(X, name).astype(object, copy=False)


def _days(X: Records) -> np.ndarray:
    """Release dates as datetime64[D] (NaT when unknown)."""
    dates = _column(X, "release_date")
    if dates.dtype == DAYS:
        return dates
    if dates.dtype.kind == "M":
        return dates.astype(DAYS)
    return pd.to_datetime(dates).to_numpy(DAYS)


def _floats(values: np.ndarray) -> np.ndarray:
    """Numbers as float64, anything else (None, text) NaN."""
    if values.dtype.kind in "iuf":
        return values.astype(np.float64)
    return np.asarray(pd.to_numeric(values, errors="coerce"), dtype=np.float64)


def _flags(values: np.ndarray) -> np.ndarray:
    """True where the value is a true flag (None and NaN count as False)."""
    missing = pd.isna(values)
    return np.array([not m and bool(v) for v, m in zip(values, missing, strict=True)], dtype=bool)


def known(X: Records, name: str) -> np.ndarray:
    """Where an input field has a value (a non-empty list, for list fields)."""
    values = _objects(X, name)
    if any(isinstance(v, list | tuple | np.ndarray) for v in values):  # parquet gives arrays
        return np.fromiter((len(v) > 0 for v in values), dtype=bool, count=len(values))
    return ~pd.isna(values)


def _top_k(values: Iterable[Any], k: int, min_count: int) -> list[str]:
    counts = Counter(v for v in values if isinstance(v, str) and v)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return sorted(v for v, c in ranked[:k] if c >= min_count)


def _text(value: Any) -> list[str]:
    return [value] if isinstance(value, str) and value else []


def track_keys(X: Records, kind: str) -> list[list[str]]:
    """Each film's keys of one kind: its director; its top-billed cast; its distributor, else
    all its production companies; its TMDB collection."""
    if kind == "cast":
        return [[c for c in cast[:TOP_BILLED] if c] for cast in _column(X, "cast")]
    if kind == "company":
        companies = _column(X, "production_companies")
        return [
            _text(d) or [c for c in cs if c]
            for d, cs in zip(_objects(X, "distributor"), companies, strict=True)
        ]
    return [_text(v) for v in _objects(X, kind)]


def log_budget(X: Records) -> np.ndarray:
    """log(1 + budget) of a positive budget, else NaN (the same bits on every CPU)."""
    budget = _floats(_column(X, "budget"))
    with np.errstate(invalid="ignore"):
        positive = budget > 0
    return portable.log1p(np.where(positive, budget, np.nan))


# Days are clipped into (-_OFFSET, _OFFSET) (far beyond any real date; NaT stays first) and
# offset, so that (group, day) pairs sort as one int64: group * _SPAN + day.
_OFFSET = 1 << 22
_SPAN = 1 << 24


def _clip_days(days: np.ndarray) -> np.ndarray:
    return np.clip(days, -_OFFSET + 1, _OFFSET - 1) + _OFFSET


def _explode(keys: Sequence[list[str]]) -> tuple[np.ndarray, list[str]]:
    """(row of each (row, key) pair, key of each pair), in row order."""
    counts = np.fromiter(map(len, keys), dtype=np.intp, count=len(keys))
    return np.repeat(np.arange(len(keys)), counts), list(itertools.chain.from_iterable(keys))


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
    def build(cls, keys: Sequence[list[str]], days: np.ndarray, log_roi: np.ndarray) -> _KeyIndex:
        rows: dict[str, list[int]] = {}
        for i, film_keys in enumerate(keys):
            for key in dict.fromkeys(film_keys):  # a key listed twice counts once
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
    """Normalized movie records -> the feature matrix (see the module docstring).

    The parameters are params.yaml's `train:` keys of the same names (no defaults here: the
    params file is their one source). prior_strength: pseudo-films that shrink a key's prior
    mean log-ROI toward the mean of all earlier films. budget_years: length of the trailing
    window for the median budget.
    """

    def __init__(
        self,
        top_k_categories: int,
        min_category_count: int,
        prior_strength: float,
        budget_years: int,
    ) -> None:
        self.top_k_categories = top_k_categories
        self.min_category_count = min_category_count
        self.prior_strength = prior_strength
        self.budget_years = budget_years

    def fit(self, X: Records, y: np.ndarray | None = None) -> MovieFeatures:
        """`y` (the success label) is read only to tell whether runtime's known-ness depends
        on the outcome; without it runtime is used when it is filled at all."""
        X = self._check(X)
        self.__dict__.pop("_key_index", None)
        self.coverage_ = {name: float(known(X, name).mean()) for name in INPUT_FIELDS}
        self.empty_fields_ = sorted(n for n, c in self.coverage_.items() if c == 0)
        for name in self.empty_fields_:
            log.info("features: '%s' is empty for every training film; left out", name)
        self.runtime_gap_ = None if y is None else self._runtime_gap(X, np.asarray(y) == 1)
        self.genres_ = sorted({g for gs in _column(X, "genres") for g in gs})
        k, n = self.top_k_categories, self.min_category_count
        raw = self._categorical_inputs(X, np.full(len(_column(X, "budget")), None))
        self.categories_ = {name: _top_k(raw[name], k, n) for name in CATEGORICAL}
        self.categories_["season"] = sorted(set(SEASONS))
        self._fit_history(X)
        self.feature_names_out_ = np.array(self._columns(), dtype=object)
        return self

    @staticmethod
    def _runtime_gap(X: Records, success: np.ndarray) -> float:
        """|P(runtime known | success) - P(runtime known | flop)| among the training films."""
        runtime = known(X, "runtime")
        if success.all() or not success.any():
            return 0.0
        return round(abs(float(runtime[success].mean()) - float(runtime[~success].mean())), 6)

    @property
    def uses_runtime(self) -> bool:
        gap = self.runtime_gap_
        return "runtime" not in self.empty_fields_ and (
            gap is None or gap <= MAX_OUTCOME_COVERAGE_GAP
        )

    def _fit_history(self, X: Records) -> None:
        """Store (day, keys, log budget, log-ROI) of the training films, sorted by day."""
        missing = [c for c in HISTORY_FIELDS if c not in X]
        if missing:
            raise KeyError(f"fit needs the training films' {', '.join(missing)}")
        days = _days(X).astype(np.int64)
        budget = log_budget(X)
        revenue = _floats(_column(X, "revenue"))
        with np.errstate(invalid="ignore"):
            log_roi = portable.log1p(np.where(revenue > 0, revenue, np.nan)) - budget
        ok = np.isfinite(budget) & np.isfinite(log_roi)
        rows = np.flatnonzero(ok)[np.argsort(days[ok], kind="stable")]
        self.history_: dict[str, Any] = {
            "day": days[rows],
            "log_budget": budget[rows],
            "log_roi": log_roi[rows],
        }
        for kind in self.track_kinds:
            keys = track_keys(X, kind)
            self.history_[kind] = [keys[i] for i in rows]

    def _usable(self, fields: Iterable[str]) -> bool:
        """Some of `fields` is filled for some training film."""
        return any(f not in self.empty_fields_ for f in fields)

    @property
    def used_fields(self) -> list[str]:
        """The input fields some feature reads (filled for some training film)."""
        unused = {*self.empty_fields_, *([] if self.uses_runtime else ["runtime"])}
        return [f for f in INPUT_FIELDS if f not in unused]

    @property
    def track_kinds(self) -> list[str]:
        return [kind for kind, fields in TRACK_KEYS.items() if self._usable(fields)]

    def _columns(self) -> list[str]:
        numeric = [
            "log_budget",
            "budget_vs_trailing",
            "release_year",
            "release_month",
            "release_weekday",
            *(["runtime"] if self.uses_runtime else []),
            "is_sequel",
            *(["n_genres"] if self._usable(["genres"]) else []),
        ]
        for kind in self.track_kinds:
            numeric += [f"{kind}_prior_films", f"{kind}_prior_log_roi"]
        onehot = [
            f"{name}={value}" for name in self.categorical_names for value in self.categories(name)
        ]
        return numeric + [f"genre_{g}" for g in self.genres_] + onehot

    @property
    def categorical_names(self) -> list[str]:
        """The categorical inputs some training film fills."""
        return [c for c in CATEGORICAL if self._usable(CATEGORICAL_FIELDS[c])]

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return self.feature_names_out_

    def categories(self, name: str) -> list[str]:
        """A categorical column's values by code: the fitted categories, then OTHER."""
        return [*self.categories_[name], OTHER]

    def frame(self, X: Records) -> pd.DataFrame:
        """transform(X) with column names, for analysis and tests."""
        return pd.DataFrame(self.transform(X), columns=list(self.feature_names_out_))

    def transform(self, X: Records) -> np.ndarray:
        """The feature matrix (float64, one row per film, columns feature_names_out_).

        Vectorized over whole columns with lookups precomputed once per fitted object, so a
        one-film request is cheap and a large batch scales linearly."""
        X = self._check(X)
        names = set(self.feature_names_out_)
        dates = _days(X)
        n = len(dates)
        nat = np.isnat(dates)
        days = dates.astype(np.int64)
        budget = log_budget(X)
        out: dict[str, np.ndarray] = {
            "log_budget": budget,
            "budget_vs_trailing": budget - self._trailing_median_budget(days),
        }
        year = dates.astype("datetime64[Y]")
        month = (dates.astype("datetime64[M]") - year).astype(np.int64) + 1
        out["release_year"] = np.where(nat, np.nan, year.astype(np.int64) + 1970.0)
        out["release_month"] = np.where(nat, np.nan, month.astype(np.float64))
        out["release_weekday"] = np.where(nat, np.nan, ((days + 3) % 7).astype(np.float64))
        if "runtime" in names:
            out["runtime"] = _floats(_column(X, "runtime"))
        if "n_genres" in names:
            out["n_genres"] = np.fromiter(map(len, _column(X, "genres")), np.float64, count=n)
        prior_mean = self._prior_mean(days)
        for kind in self.track_kinds:
            films, roi = self._track_record(kind, track_keys(X, kind), days, prior_mean)
            out[f"{kind}_prior_films"] = films
            out[f"{kind}_prior_log_roi"] = roi
        sequel = _flags(_column(X, "is_sequel"))
        if "collection" in self.track_kinds:
            sequel |= out["collection_prior_films"] > 0
        out["is_sequel"] = sequel.astype(np.float64)
        onehot = self._genre_matrix(_column(X, "genres"))
        for j, g in enumerate(self.genres_):
            out[f"genre_{g}"] = onehot[:, j]
        season = np.array([None, *SEASONS], dtype=object)[np.where(nat, 0, month)]
        raw = self._categorical_inputs(X, season)
        for name in self.categorical_names:  # one-hot of the category, else OTHER; 0: unknown
            values = self.categories(name)
            other = len(values) - 1
            codes = np.fromiter(
                map(self._category_codes(name).get, raw[name], itertools.repeat(other)),
                dtype=np.intp,
                count=n,
            )
            codes[pd.isna(raw[name])] = -1
            onehot = (codes[:, None] == np.arange(len(values))).astype(np.float64)
            for j, value in enumerate(values):
                out[f"{name}={value}"] = onehot[:, j]
        return np.column_stack([out[name] for name in self.feature_names_out_])

    @staticmethod
    def _categorical_inputs(X: Records, season: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "certification": _objects(X, "certification"),
            "distributor": _objects(X, "distributor"),
            "source_material": _objects(X, "source_material"),
            "creative_type": _objects(X, "creative_type"),
            "language": _objects(X, "original_language"),
            "season": season,
        }

    def _trailing_median_budget(self, days: np.ndarray) -> np.ndarray:
        """Median log budget of history films in the `budget_years` before the film (or before
        the end of the history, when the film is later than every history film)."""
        hist_days = self.history_["day"]
        hist_budget = self.history_["log_budget"]
        if len(hist_days) == 0:
            return np.full(len(days), np.nan)
        ends, inverse = np.unique(np.minimum(days, hist_days[-1] + 1), return_inverse=True)
        cached: dict[int, float] = self._cache().setdefault("trailing_median", {})  # by end
        new = np.array([e for e in ends.tolist() if e not in cached], dtype=ends.dtype)
        window = round(365.25 * self.budget_years)
        los = np.searchsorted(hist_days, new - window, side="left")
        his = np.searchsorted(hist_days, new, side="left")
        for end, lo, hi in zip(new.tolist(), los, his, strict=True):
            cached[end] = float(np.median(hist_budget[lo:hi])) if hi > lo else np.nan
        medians = np.array([cached[e] for e in ends.tolist()], dtype=np.float64)
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
        index: _KeyIndex = cache[kind]
        return index

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
        """Category -> its position in categories(name), built once."""
        cache = self._cache()
        key = f"codes:{name}"
        if key not in cache:
            cache[key] = {v: i for i, v in enumerate(self.categories(name))}
        codes: dict[str, int] = cache[key]
        return codes

    def _track_record(
        self, kind: str, keys: Sequence[list[str]], days: np.ndarray, prior_mean: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(number of earlier films, shrunk mean log-ROI of earlier films) per row, pooled
        over the row's keys; a row whose keys have no history gets 0 and the prior mean."""
        index = self._lookup(kind)
        rows, flat = _explode(keys)
        group = np.fromiter(
            map(index.groups.get, flat, itertools.repeat(-1)), dtype=np.int64, count=len(flat)
        )
        seen = group >= 0
        rows, g = rows[seen], group[seen]
        pos = np.searchsorted(index.code, g * _SPAN + _clip_days(days[rows]), side="left")
        n = pos - index.start[g]
        films = np.bincount(rows, weights=n, minlength=len(keys)).astype(np.float64)
        total = np.bincount(rows, weights=index.csum[index.csum_start[g] + n], minlength=len(keys))
        m = self.prior_strength
        with np.errstate(invalid="ignore"):
            shrunk = (total + m * prior_mean) / (films + m)
        use = (films > 0) & np.isfinite(prior_mean)
        return films, np.where(use, shrunk, prior_mean)

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = super().__getstate__()
        state.pop("_key_index", None)
        return state

    @staticmethod
    def _check(X: Records) -> Records:
        missing = [c for c in INPUT_FIELDS if c not in X]
        if missing:
            raise KeyError(f"missing input fields: {', '.join(missing)}")
        return X
