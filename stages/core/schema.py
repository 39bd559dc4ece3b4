"""The normalized movie record: the one shape every source writes and every consumer reads.

It follows TMDB's movie object. Fields are split by *when they are known*: only
PRE_RELEASE fields may ever become model features; POST_RELEASE fields are kept for
labels and analysis.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# A numbered or "Part N" title is the only sequel signal every source carries.
_SEQUEL_RE = re.compile(r"(?:\s|^)(?:[2-9]|II|III|IV|V|VI|Part\s+\w+)(?::|\s*$)", re.IGNORECASE)

# name -> (kind, nullable). kind: int, float, str, bool, date (YYYY-MM-DD string), list (of str)
FIELDS: dict[str, tuple[str, bool]] = {
    "id": ("int", False),
    "data_source": ("str", False),
    "imdb_id": ("str", True),
    "title": ("str", False),
    "original_title": ("str", True),
    "release_date": ("date", True),
    "status": ("str", True),
    "budget": ("int", True),
    "runtime": ("int", True),
    "genres": ("list", False),
    "certification": ("str", True),
    "production_companies": ("list", False),
    "distributor": ("str", True),
    "collection": ("str", True),
    "is_sequel": ("bool", True),
    "original_language": ("str", True),
    "director": ("str", True),
    "cast": ("list", False),
    "keywords": ("list", False),
    "source_material": ("str", True),
    "creative_type": ("str", True),
    # post-release: labels and analysis only, never features
    "revenue": ("int", True),
    "us_gross": ("int", True),
    "dvd_sales": ("int", True),
    "vote_count": ("int", True),
    "vote_average": ("float", True),
    "popularity": ("float", True),
    "rt_rating": ("float", True),
}

POST_RELEASE: frozenset[str] = frozenset(
    {
        "revenue",
        "us_gross",
        "dvd_sales",
        "vote_count",
        "vote_average",
        "popularity",
        "rt_rating",
    }
)
PRE_RELEASE: tuple[str, ...] = tuple(f for f in FIELDS if f not in POST_RELEASE)
LIST_FIELDS: tuple[str, ...] = tuple(f for f, (kind, _) in FIELDS.items() if kind == "list")


def empty_record(record_id: int, data_source: str, title: str) -> dict[str, Any]:
    """A record with every field present: unknowns are None, lists are empty."""
    rec: dict[str, Any] = {f: ([] if kind == "list" else None) for f, (kind, _) in FIELDS.items()}
    rec.update(id=record_id, data_source=data_source, title=title)
    return rec


def missing_fields(record: Mapping[str, Any]) -> list[str]:
    return [f for f in FIELDS if f not in record]


def is_sequel_title(title: Any) -> bool:
    return isinstance(title, str) and bool(_SEQUEL_RE.search(title))
