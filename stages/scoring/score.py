"""Validate pre-release movie inputs and score them: one code path for the CLI and the API.

Known genres (for the "unknown genre" check) come from the loaded model itself: the fitted
feature step of the classifier pipeline exposes `genres_`, the genres it was trained on. A
genre the model never saw would silently score as "no genre", so it is rejected instead. A
model without such a step skips the check.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import pandas as pd
import sklearn
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sklearn.pipeline import Pipeline

from stages.core.schema import FIELDS, POST_RELEASE
from stages.model import portable
from stages.model.features import Records
from stages.scoring import fastpath
from stages.scoring.fastpath import FastHeads

DATA_SOURCE = "predict"
FAST_PATH = "_fast_path"  # key prepare_model adds to the loaded artefact


class Movie(BaseModel):
    """A film as known before release; post-release fields (revenue, votes…) are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    title: str = Field(min_length=1, max_length=500)
    release_date: dt.date
    budget: int = Field(gt=0, le=10_000_000_000, description="production budget in US dollars")
    runtime: int | None = Field(default=None, gt=0, le=1000, description="minutes")
    genres: list[str] = Field(default_factory=list, max_length=50)
    certification: str | None = None
    distributor: str | None = None
    production_companies: list[str] = Field(default_factory=list, max_length=200)
    collection: str | None = None
    is_sequel: bool | None = None
    original_language: str | None = None
    director: str | None = None
    cast: list[str] = Field(default_factory=list, max_length=1000)
    keywords: list[str] = Field(default_factory=list, max_length=1000)
    source_material: str | None = None
    creative_type: str | None = None


MOVIE_FIELDS: tuple[str, ...] = tuple(Movie.model_fields)
FIELD_NAMES = frozenset(MOVIE_FIELDS)
REQUIRED_FIELDS = frozenset(n for n, f in Movie.model_fields.items() if f.is_required())


def _column_adapter(name: str) -> TypeAdapter[list[Any]]:
    """Validates a list of one Movie field's values exactly as Movie validates the field: same
    annotation, constraints and string settings (Movie stays the single definition)."""
    info = Movie.model_fields[name]
    item = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    config = {k: v for k, v in Movie.model_config.items() if k not in ("extra", "frozen")}
    return TypeAdapter(list[item], config=ConfigDict(**config))  # type: ignore[valid-type]


COLUMN_ADAPTERS = {name: _column_adapter(name) for name in MOVIE_FIELDS}


class Prediction(BaseModel):
    """One scored film; the same fields as a row of the batch command's output."""

    title: str
    success_probability: float = Field(description="P(revenue >= k x budget)")
    predicted_revenue: float = Field(description="predicted worldwide revenue, US dollars")
    success: bool = Field(description="success_probability >= the model's decision threshold")


@dataclass(frozen=True)
class Problem:
    """One reason an input was refused: where (path inside the record) and why."""

    loc: tuple[str | int, ...]
    msg: str
    type: str

    def describe(self) -> str:
        where = ".".join(str(p) for p in self.loc) or "record"
        return f"{where}: {self.msg}"


def problems_from(error: ValidationError) -> list[Problem]:
    """Pydantic errors in our words: an extra field says why it is not accepted."""
    out = []
    for err in error.errors(include_url=False):
        loc = tuple(err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            name = str(loc[-1]) if loc else "?"
            kind = "a post-release field" if name in POST_RELEASE else "not a pre-release field"
            msg = f"'{name}' is {kind}; remove it (accepted: {', '.join(MOVIE_FIELDS)})"
        out.append(Problem(loc, msg, err["type"]))
    return out


def known_genres(model: Mapping[str, Any]) -> frozenset[str] | None:
    """The genres the model was trained on, from its fitted feature step; None if it has none."""
    for _, step in getattr(model["classifier"], "steps", []):
        genres = getattr(step, "genres_", None)
        if genres is not None:
            return frozenset(genres)
    return None


def genre_problems(genres: Sequence[str], known: frozenset[str] | None) -> list[Problem]:
    if known is None:
        return []
    return [
        Problem(
            ("genres", i),
            f"unknown genre {g!r}; use one of: {', '.join(sorted(known))}",
            "unknown_genre",
        )
        for i, g in enumerate(genres)
        if g not in known
    ]


def validate(
    raw: Any, known: frozenset[str] | None, *, json_text: bool = False
) -> tuple[Movie | None, list[Problem]]:
    """One raw mapping (or JSON text, parsed by pydantic) -> (Movie, []) or (None, problems)."""
    if not json_text and not isinstance(raw, Mapping):
        return None, [Problem((), "expected a JSON object with the movie's fields", "type")]
    try:
        movie = Movie.model_validate_json(raw) if json_text else Movie.model_validate(raw)
    except ValidationError as exc:
        return None, problems_from(exc)
    problems = genre_problems(movie.genres, known)
    return (None, problems) if problems else (movie, [])


@dataclass(frozen=True)
class Validated:
    """A batch validated field by field: the accepted rows' values column by column, and why
    each other row was refused (positions in the input batch)."""

    accepted: list[int]
    columns: dict[str, list[Any]]  # MOVIE_FIELDS -> the accepted rows' values, in order
    refused: dict[int, list[Problem]]


def validate_batch(records: Sequence[Any], known: frozenset[str] | None) -> Validated:
    """validate() for many parsed records at once, with the same outcome per record.

    Why: one pydantic call per field over the whole batch instead of a Movie per record is
    several times faster. Records that are not plain objects with known and required keys, or
    with a value a field refuses, are validated one by one by Movie, so every refused record
    gets exactly validate()'s reasons. Records are parsed JSON or CSV: plain values, which
    compare with == without raising (not arrays)."""
    if all(type(r) is dict for r in records):
        plain = list(range(len(records)))
        recs: list[dict[str, Any]] = list(records)
    else:
        plain = [i for i, r in enumerate(records) if type(r) is dict]
        recs = [records[i] for i in plain]
    raw = {name: [r.get(name, _MISSING) for r in recs] for name in MOVIE_FIELDS}
    absent = {name: values.count(_MISSING) for name, values in raw.items()}
    failed = _unexpected_keys(recs, raw, absent)  # positions in `plain` (and `recs`)
    values = {name: _validate_field(name, raw[name], absent[name], failed) for name in raw}
    refused: dict[int, list[Problem]] = {}
    if not failed and len(plain) == len(records) and _known(values["genres"], known):
        return Validated(plain, values, refused)  # the usual batch: every record accepted
    movies: dict[int, Movie] = {}  # accepted one by one (not expected: Movie and the field
    # adapters agree), but Movie decides
    for i in sorted(set(range(len(records))).difference(plain).union(plain[j] for j in failed)):
        movie, problems = validate(records[i], known)
        if movie is None:
            refused[i] = problems
        else:
            movies[i] = movie
    source = sorted(  # (record, its position in `plain`, or None: accepted by Movie)
        [(i, j) for j, i in enumerate(plain) if j not in failed] + [(i, None) for i in movies]
    )
    accepted: list[tuple[int, int | None]] = []
    for i, j in source:
        genres = values["genres"][j] if j is not None else movies[i].genres
        if known is not None and genres and not known.issuperset(genres):
            refused[i] = genre_problems(genres, known)
        else:
            accepted.append((i, j))
    columns = {
        name: [col[j] if j is not None else getattr(movies[i], name) for i, j in accepted]
        for name, col in values.items()
    }
    return Validated([i for i, _ in accepted], columns, dict(sorted(refused.items())))


_MISSING = object()


def _unexpected_keys(
    records: list[dict[str, Any]], raw: Mapping[str, list[Any]], absent: Mapping[str, int]
) -> set[int]:
    """Positions of the records lacking a required field or holding one Movie does not have
    (counted first: every key is a field when the keys add up to the fields found)."""
    bad: set[int] = set()
    for name in REQUIRED_FIELDS:
        if absent[name]:
            bad.update(j for j, v in enumerate(raw[name]) if v is _MISSING)
    found = sum(len(records) - n for n in absent.values())
    if sum(map(len, records)) != found:
        bad.update(j for j, r in enumerate(records) if not r.keys() <= FIELD_NAMES)
    return bad


def _known(genres: list[list[str]], known: frozenset[str] | None) -> bool:
    """Every genre of the batch is one the model knows."""
    return known is None or known.issuperset(set().union(*genres))


def _defaults(name: str, n: int) -> list[Any]:
    """`n` times the field's default (a new list each time, as Movie's factories make)."""
    info = Movie.model_fields[name]
    if info.default_factory is None:
        return [info.default] * n
    return [info.default_factory() for _ in range(n)]  # type: ignore[call-arg]


def _validate_field(name: str, raw: list[Any], missing: int, failed: set[int]) -> list[Any]:
    """One field's raw values (`missing` of them _MISSING) validated, the field's default
    where absent; adds the positions of values the field refuses to `failed`."""
    if missing:
        out = _defaults(name, len(raw))
        if missing == len(raw):
            return out
        present = [j for j, v in enumerate(raw) if v is not _MISSING]
        given = [raw[j] for j in present]
    else:
        out, present, given = raw, list(range(len(raw))), raw
    adapter = COLUMN_ADAPTERS[name]
    try:
        checked = adapter.validate_python(given)
    except ValidationError as exc:
        bad = {int(e["loc"][0]) for e in exc.errors(include_url=False)}
        failed.update(present[k] for k in bad)
        keep = [k for k in range(len(given)) if k not in bad]
        present = [present[k] for k in keep]
        checked = adapter.validate_python([given[k] for k in keep])
        if out is raw:
            out = list(raw)
    if out is raw:
        return checked  # type: ignore[no-any-return]
    for j, value in zip(present, checked, strict=True):
        out[j] = value
    return out


def _objects(values: Iterable[Any], n: int) -> np.ndarray:
    """A 1-D object array (np.array would turn equal-length lists into a 2-D array)."""
    return np.fromiter(values, dtype=object, count=n)


_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def _dates(values: Iterable[dt.date], n: int) -> np.ndarray:
    """datetime64[D] from dates, through their ordinals (np.array parses each date: slow)."""
    days = np.fromiter(map(dt.date.toordinal, values), dtype=np.int64, count=n)
    return (days - _EPOCH_ORDINAL).astype("datetime64[D]")


def to_columns(fields: Mapping[str, Sequence[Any]]) -> dict[str, np.ndarray]:
    """Validated movie fields (MOVIE_FIELDS -> values) as one array per field: what the
    model's feature step reads (release dates as datetime64[D])."""
    n = len(fields["title"])
    return {
        name: _dates(values, n) if FIELDS[name][0] == "date" else _objects(values, n)
        for name, values in fields.items()
    }


def _records(columns: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Normalized records (every schema field, post-release ones None) for a model whose
    pipelines read a frame of the training data's shape."""
    n = len(columns["title"])
    cols: dict[str, Any] = {}
    for name, (kind, _) in FIELDS.items():
        if name in columns:
            cols[name] = columns[name]
        elif kind == "list":
            cols[name] = _objects(([] for _ in range(n)), n)
        else:
            cols[name] = np.full(n, None, dtype=object)
    cols["id"] = np.arange(1, n + 1)
    cols["data_source"] = np.full(n, DATA_SOURCE, dtype=object)
    cols["original_title"] = columns["title"]
    return pd.DataFrame(cols, columns=list(FIELDS))


def movie_columns(movies: Sequence[Movie]) -> dict[str, np.ndarray]:
    return to_columns({name: [getattr(m, name) for m in movies] for name in MOVIE_FIELDS})


@dataclass(frozen=True)
class Scores:
    success_probability: np.ndarray
    predicted_revenue: np.ndarray
    success: np.ndarray


def shared_features(model: Mapping[str, Any]) -> Any | None:
    """The feature step both heads share (train fits one and puts it in both pipelines), or
    None for a model whose heads have their own (then each pipeline runs whole)."""
    clf, reg = model["classifier"], model["regressor"]
    if not (isinstance(clf, Pipeline) and isinstance(reg, Pipeline)):
        return None
    if len(clf.steps) != 2 or len(reg.steps) != 2 or clf[0] is not reg[0]:
        return None
    return clf[0]


def prepare_model(model: Mapping[str, Any]) -> dict[str, Any]:
    """The loaded artefact plus the verified fast path for its heads (stages/scoring/fastpath.py),
    built once by whoever loads the model for scoring (the service, the batch command)."""
    feats = shared_features(model)
    return {**model, FAST_PATH: fastpath.build(model, feats) if feats is not None else None}


def score(model: Mapping[str, Any], columns: Records) -> Scores:
    """P(success) from the classifier, revenue from the log1p regressor, the model's threshold.

    With a shared feature step the features are computed once and fed to both heads: through
    the verified fast path if prepare_model built one, else each head's final estimator (the
    same numbers as each Pipeline's predict). `columns` come from to_columns (validated
    inputs) or are a frame of records, and the feature frame is ours, so sklearn's per-call
    parameter validation is skipped.
    """
    feats = shared_features(model)
    fast: FastHeads | None = model.get(FAST_PATH)
    with sklearn.config_context(skip_parameter_validation=True):
        if feats is None:
            frame = columns if isinstance(columns, pd.DataFrame) else _records(columns)
            proba = model["classifier"].predict_proba(frame)[:, 1]
            log_revenue = model["regressor"].predict(frame)
        else:
            if fast is not None:
                proba, log_revenue = fast.predict(feats.transform_arrays(columns))
            else:
                X = feats.transform(columns)
                proba = model["classifier"][-1].predict_proba(X)[:, 1]
                log_revenue = model["regressor"][-1].predict(X)
    proba = np.asarray(proba, dtype=float)
    revenue = portable.expm1(log_revenue)
    return Scores(proba, np.maximum(revenue, 0.0), proba >= float(model["threshold"]))


def predictions(movies: Sequence[Movie], scores: Scores) -> list[Prediction]:
    return [
        Prediction(
            title=m.title,
            success_probability=round(float(p), 6),
            predicted_revenue=round(float(r), 2),
            success=bool(s),
        )
        for m, p, r, s in zip(
            movies,
            scores.success_probability,
            scores.predicted_revenue,
            scores.success,
            strict=True,
        )
    ]


def score_movies(model: Mapping[str, Any], movies: Iterable[Movie]) -> list[Prediction]:
    """Score already validated movies (one call to each head for the whole list)."""
    movies = list(movies)
    if not movies:
        return []
    return predictions(movies, score(model, movie_columns(movies)))
