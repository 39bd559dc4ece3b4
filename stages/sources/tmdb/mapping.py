"""TMDB movie JSON -> the normalized record (stages.core.schema), the same shape as the sample."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from stages.core.schema import empty_record, is_sequel_title

TOP_CAST = 5
# Theatrical, limited, premiere first: the rating a film was released with.
_CERT_TYPE_ORDER = (3, 2, 1, 4, 5, 6)


def _names(items: Any, key: str = "name") -> list[str]:
    if not isinstance(items, list):
        return []
    return [str(x[key]) for x in items if isinstance(x, dict) and x.get(key)]


def _positive(value: Any) -> int | None:
    """TMDB writes 0 for an unknown budget, revenue or runtime."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return int(value)


def _certification(release_dates: Any, countries: Iterable[str]) -> str | None:
    """The first country's rating that has one, preferring the release type it opened with."""
    results = release_dates.get("results") if isinstance(release_dates, dict) else None
    if not isinstance(results, list):
        return None
    by_country = {r.get("iso_3166_1"): r.get("release_dates") or [] for r in results}
    for country in countries:
        entries = [
            e for e in by_country.get(country, []) if isinstance(e, dict) and e.get("certification")
        ]
        for rtype in _CERT_TYPE_ORDER:
            for e in entries:
                if e.get("type") == rtype:
                    return str(e["certification"]).strip() or None
        if entries:
            return str(entries[0]["certification"]).strip() or None
    return None


def map_details(d: Mapping[str, Any], regions: Sequence[str] = ()) -> dict[str, Any]:
    """TMDB /movie/{id} (with credits, keywords, release_dates) -> normalized record.

    Pure. budget/revenue/runtime 0 become None (unknown). vote_*/popularity are post-release
    values, kept for analysis only (schema.POST_RELEASE).
    """
    title = d.get("title") or d.get("original_title") or ""
    rec = empty_record(int(d["id"]), "tmdb", str(title))
    credits = d.get("credits") if isinstance(d.get("credits"), dict) else {}
    crew = credits.get("crew") or []
    cast = sorted(
        (c for c in credits.get("cast") or [] if isinstance(c, dict) and c.get("name")),
        key=lambda c: (c.get("order", 1_000_000), c.get("name")),
    )
    directors = [c["name"] for c in crew if isinstance(c, dict) and c.get("job") == "Director"]
    kw = d.get("keywords") if isinstance(d.get("keywords"), dict) else {}
    collection = d.get("belongs_to_collection")
    countries = [*regions, *([] if "US" in regions else ["US"])]
    rec.update(
        imdb_id=d.get("imdb_id") or None,
        original_title=d.get("original_title") or None,
        release_date=d.get("release_date") or None,
        status=d.get("status") or None,
        budget=_positive(d.get("budget")),
        runtime=_positive(d.get("runtime")),
        genres=_names(d.get("genres")),
        certification=_certification(d.get("release_dates"), countries),
        production_companies=_names(d.get("production_companies")),
        collection=collection.get("name") if isinstance(collection, dict) else None,
        is_sequel=is_sequel_title(title),
        original_language=d.get("original_language") or None,
        director=directors[0] if directors else None,
        cast=[c["name"] for c in cast[:TOP_CAST]],
        keywords=_names(kw.get("keywords")),
        revenue=_positive(d.get("revenue")),
        vote_count=d.get("vote_count"),
        vote_average=d.get("vote_average"),
        popularity=d.get("popularity"),
    )
    return rec
