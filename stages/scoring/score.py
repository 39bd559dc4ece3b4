"""Validate pre-release movie inputs and score them: one code path for the CLI and the API.

The request model `Movie` derives from the record schema (stages.core.schema) and the fields
the feature step reads. Known genres (for the "unknown genre" check) come from the loaded
model itself: a genre it never saw would silently score as "no genre", so it is refused.
"""

from __future__ import annotations

import datetime as dt
import re
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import sklearn
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError, PydanticUndefined

from stages.core.schema import POST_RELEASE, MovieRecord
from stages.model import portable
from stages.model.artifact import Model
from stages.model.features import INPUT_FIELDS, Records

# What a scoring request must satisfy beyond the record's types (stages.core.schema): the
# fields the model reads are optional unless named here, and bounded as stated.
# (Field() is typed as its default's type, for annotations; each value here is a FieldInfo.)
RULES: dict[str, Any] = {
    "title": Field(min_length=1, max_length=500, pattern=r"\S"),
    "release_date": Field(),
    "budget": Field(gt=0, le=10_000_000_000, description="production budget in US dollars"),
    "runtime": Field(default=None, gt=0, le=1000, description="minutes"),
    "genres": Field(default_factory=list, max_length=50),
    "production_companies": Field(default_factory=list, max_length=200),
    "cast": Field(default_factory=list, max_length=1000),
}


def _is_date(annotation: Any) -> bool:
    return annotation is dt.date or dt.date in typing.get_args(annotation)


_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _date_string(value: Any) -> Any:
    """A date is a JSON string YYYY-MM-DD (or a date object): pydantic's lax date would also
    read integers and digit strings as Unix times (`0` as 1970-01-01) and datetimes."""
    if value is None or type(value) is dt.date:
        return value
    if isinstance(value, str) and _DATE_RE.fullmatch(value.strip()):
        return value.strip()
    raise PydanticCustomError("date_type", "Input should be a valid date string YYYY-MM-DD")


def _integral(value: Any) -> Any:
    """JSON Schema's integer: 3 and 3.0 alike (a JSON number's spelling is not its type),
    but never a bool, a string or 3.5 (refused by the strict int after this)."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


def _is_int(annotation: Any) -> bool:
    return annotation is int or int in typing.get_args(annotation)


# Strict everywhere (no bool as a number, no 0/1 as a bool, no number as a string) except
# the dates, which come as JSON strings: those are checked by _date_string instead.
LOOSE_DATES = frozenset(
    name for name, info in MovieRecord.model_fields.items() if _is_date(info.annotation)
)


def _request_field(name: str) -> tuple[Any, FieldInfo]:
    """A record field as a request field: required (not nullable) where RULES give no
    default, the record's description kept, RULES' bounds added, strict types."""
    record = MovieRecord.model_fields[name]
    rule = RULES.get(name)
    annotation = record.annotation
    if rule is None:
        info = FieldInfo.merge_field_infos(record, default=record.default)
    else:
        if rule.is_required() and type(None) in typing.get_args(annotation):
            (annotation,) = (a for a in typing.get_args(annotation) if a is not type(None))
        info = FieldInfo.merge_field_infos(record, rule)
        if rule.is_required():
            info = FieldInfo.merge_field_infos(info, default=PydanticUndefined)
    if name in LOOSE_DATES:
        return Annotated[annotation, BeforeValidator(_date_string)], info
    if _is_int(annotation):
        return Annotated[annotation, BeforeValidator(_integral)], FieldInfo.merge_field_infos(
            info, Field(strict=True)
        )
    return annotation, FieldInfo.merge_field_infos(info, Field(strict=True))


_REQUEST_FIELDS: dict[str, Any] = {name: _request_field(name) for name in ("title", *INPUT_FIELDS)}
if TYPE_CHECKING:  # the type checker sees a model; its fields are only known at run time

    class Movie(BaseModel):
        def __getattr__(self, name: str) -> Any: ...

else:
    Movie = create_model(
        "Movie",
        __config__=ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True),
        __doc__="A film as known before release; post-release fields (revenue, votes…) are "
        "refused.",
        **_REQUEST_FIELDS,
    )
MOVIE_FIELDS: tuple[str, ...] = tuple(Movie.model_fields)
FIELD_NAMES = frozenset(MOVIE_FIELDS)
REQUIRED_FIELDS = frozenset(n for n, f in Movie.model_fields.items() if f.is_required())
_ACCEPTED = ", ".join(MOVIE_FIELDS)


def _column_adapter(name: str) -> TypeAdapter[list[Any]]:
    """Validates a list of one Movie field's values exactly as Movie validates the field: same
    annotation, constraints and string settings (Movie stays the single definition)."""
    info = Movie.model_fields[name]
    item = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    config = ConfigDict(str_strip_whitespace=bool(Movie.model_config.get("str_strip_whitespace")))
    items = list[item]  # type: ignore[valid-type]  # a type built at run time, from Movie
    return TypeAdapter(items, config=config)


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
    for err in error.errors(include_url=False, include_input=False, include_context=False):
        loc = tuple(err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            name = str(loc[-1])[:100] if loc else "?"
            kind = "a post-release field" if name in POST_RELEASE else "not a pre-release field"
            msg = f"'{name}' is {kind}; remove it (accepted: {_ACCEPTED})"
        out.append(Problem(loc, msg, err["type"]))
    return out


def known_genres(model: Model) -> frozenset[str]:
    """The genres the model was trained on: any other would silently score as "no genre"."""
    return frozenset(model.features.genres_)


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


def _validate_one(
    raw: Any, known: frozenset[str] | None, detail: bool = True
) -> tuple[BaseModel | None, list[Problem], int]:
    """One parsed record -> (Movie, [], 0) or (None, problems, their count): what
    validate_batch falls back to for the records a field refuses, so that each refused record
    gets Movie's own reasons. Without `detail`, only the count (no problem is built)."""
    if not isinstance(raw, Mapping):
        return None, [Problem((), "expected a JSON object with the movie's fields", "type")], 1
    try:
        movie = Movie.model_validate(raw)
    except ValidationError as exc:
        if not detail:
            return None, [], exc.error_count()
        problems = problems_from(exc)
        return None, problems, len(problems)
    problems = genre_problems(movie.genres, known)
    return (None, problems, len(problems)) if problems else (movie, [], 0)


@dataclass(frozen=True)
class Validated:
    """A batch validated field by field: the accepted rows' values column by column, and why
    each other row was refused (positions in the input batch)."""

    accepted: list[int]
    columns: dict[str, list[Any]]  # MOVIE_FIELDS -> the accepted rows' values, in order
    refused: dict[int, list[Problem]]  # past `detail` problems, a refused row's list is empty
    problem_count: int = 0  # of all refused rows


def validate_batch(
    records: Sequence[Any], known: frozenset[str] | None, detail: int | None = None
) -> Validated:
    """Validate parsed records (the API's list, the batch command's chunks) with the outcome
    Movie gives each record; with `detail`, the problems of the refused records are built
    only until there are that many, and the others only counted (a body of thousands of
    bad fields is refused without building thousands of messages).

    Why: one pydantic call per field over the whole batch instead of a Movie per record is
    several times faster. Records that are not plain objects with known and required keys, or
    with a value a field refuses, are validated one by one by Movie, so every refused record
    gets exactly Movie's reasons. Records are parsed JSON or CSV: plain values, which
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
    movies: dict[int, Any] = {}  # accepted one by one (not expected: Movie and the field
    # adapters agree), but Movie decides
    count = 0
    for i in sorted(set(range(len(records))).difference(plain).union(plain[j] for j in failed)):
        movie, problems, n = _validate_one(records[i], known, detail is None or count < detail)
        if movie is None:
            refused[i] = problems
            count += n
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
            count += len(refused[i])
        else:
            accepted.append((i, j))
    columns = {
        name: [col[j] if j is not None else getattr(movies[i], name) for i, j in accepted]
        for name, col in values.items()
    }
    return Validated([i for i, _ in accepted], columns, dict(sorted(refused.items())), count)


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
    factory = info.default_factory  # get_default would inspect its signature on every call
    return [factory() for _ in range(n)]  # type: ignore[call-arg]  # Movie's take no argument


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
        return checked
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
        name: _dates(values, n) if name == "release_date" else _objects(values, n)
        for name, values in fields.items()
    }


@dataclass(frozen=True)
class Scores:
    """The model's outputs for a batch of films, one array entry per film."""

    success_probability: np.ndarray
    predicted_revenue: np.ndarray
    success: np.ndarray

    def rounded(self) -> tuple[list[float], list[float], list[bool]]:
        """As every output shows them (the API's and the batch command's alike): P(success) to
        6 decimals, revenue to the cent."""
        return (
            self.success_probability.round(6).tolist(),
            self.predicted_revenue.round(2).tolist(),
            self.success.tolist(),
        )


def score(model: Model, columns: Records) -> Scores:
    """P(success) from the classifier, revenue from the log1p regressor, the model's threshold:
    the one scoring path of the service, the batch command and evaluation alike.

    `columns` come from to_columns (validated inputs) or are a frame of records; the feature
    matrix is ours, so scikit-learn's per-call parameter validation is skipped."""
    with sklearn.config_context(skip_parameter_validation=True):
        X = model.encode(columns)
        proba = model.success_probability(X)
        revenue = portable.expm1(model.log_revenue(X))
    return Scores(proba, np.maximum(revenue, 0.0), proba >= model.threshold)


def predictions(titles: Sequence[str], scores: Scores) -> list[Prediction]:
    """One Prediction per scored film, in order, with the rounding of Scores.rounded."""
    proba, revenue, success = scores.rounded()
    return [
        Prediction(title=t, success_probability=p, predicted_revenue=r, success=s)
        for t, p, r, s in zip(titles, proba, revenue, success, strict=True)
    ]
