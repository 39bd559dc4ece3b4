"""The normalized movie record: the one shape every source writes and every consumer reads.

It follows TMDB's movie object and is declared once, as the pydantic model `MovieRecord`.
Everything else derives from it: the field list, the split by *when a field is known* (only
pre-release fields may ever become model features; post-release ones are kept for labels and
analysis), `prepare`'s type checks, and the scoring request model (stages/scoring).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo
from pydantic.json_schema import JsonDict

# A numbered or "Part N" title is the only sequel signal every source carries.
_SEQUEL_RE = re.compile(r"(?:\s|^)(?:[2-9]|II|III|IV|V|VI|Part\s+\w+)(?::|\s*$)", re.IGNORECASE)

_POST: JsonDict = {"post_release": True}


def post_release(**kwargs: Any) -> Any:
    """A field known only after release: labels and analysis, never a feature."""
    return Field(default=None, json_schema_extra=_POST, **kwargs)


class MovieRecord(BaseModel):
    """One film as a source delivers it; None (or an empty list) means unknown.

    Strict types (a JSON record's values are checked, not coerced): what `prepare` accepts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: int
    data_source: str
    imdb_id: str | None = None
    title: str
    original_title: str | None = None
    release_date: dt.date | None = Field(default=None, description="primary release date")
    status: str | None = None
    budget: int | None = Field(default=None, description="production budget, US dollars")
    runtime: int | None = Field(default=None, description="minutes")
    genres: list[str] = Field(default_factory=list)
    certification: str | None = None
    production_companies: list[str] = Field(default_factory=list)
    distributor: str | None = None
    collection: str | None = None
    is_sequel: bool | None = None
    original_language: str | None = None
    director: str | None = None
    cast: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    source_material: str | None = None
    creative_type: str | None = None
    revenue: int | None = post_release(description="worldwide box office, US dollars")
    us_gross: int | None = post_release()
    dvd_sales: int | None = post_release()
    vote_count: int | None = post_release()
    vote_average: float | None = post_release()
    popularity: float | None = post_release()
    rt_rating: float | None = post_release()


def is_post_release(info: FieldInfo) -> bool:
    return info.json_schema_extra == _POST


FIELDS: tuple[str, ...] = tuple(MovieRecord.model_fields)
POST_RELEASE: frozenset[str] = frozenset(
    name for name, info in MovieRecord.model_fields.items() if is_post_release(info)
)
PRE_RELEASE: tuple[str, ...] = tuple(f for f in FIELDS if f not in POST_RELEASE)
REQUIRED: tuple[str, ...] = tuple(
    name for name, info in MovieRecord.model_fields.items() if info.is_required()
)


def empty_record(record_id: int, data_source: str, title: str) -> dict[str, Any]:
    """A record with every field present: unknowns are None, lists are empty."""
    rec: dict[str, Any] = {
        name: info.get_default(call_default_factory=True)
        for name, info in MovieRecord.model_fields.items()
    }
    rec.update(id=record_id, data_source=data_source, title=title)
    return rec


def missing_fields(record: dict[str, Any]) -> list[str]:
    return [f for f in FIELDS if f not in record]


def is_sequel_title(title: Any) -> bool:
    return isinstance(title, str) and bool(_SEQUEL_RE.search(title))
