"""TMDB movie JSON -> the normalized record (stages.core.schema), the same shape as the sample.

Pure and defensive: a field TMDB leaves out, or sends with the wrong type, becomes unknown
(None or an empty list) instead of failing the film. Only an object without a usable `id`
is refused (KeyError/TypeError/ValueError, counted as `malformed` by the caller).

Fields that need a word of explanation:

- `cast`: the first TOP_CAST names in TMDB's billing order (`credits.cast[].order`, lowest
  first; a missing order sorts last, ties by name). The feature step uses the top-billed few.
- `collection`: the name of `belongs_to_collection` (e.g. "The Dark Knight Collection"), None
  without one. TMDB attaches it to every film of a franchise after the fact; the feature step
  only counts *earlier* films of the collection, so the first film is not a sequel.
- `source_material`: what the story is based on, from the keywords through SOURCE_MATERIAL,
  an explicit allow-list of facts known before release (a film is announced as "based on a
  novel"), mapped onto the bundled sample's vocabulary so both sources share categories.
  No allow-listed keyword means unknown (None), never "Original Screenplay": keywords are
  user-contributed and a missing one says nothing.
- `keywords`: kept for analysis only. They accumulate after release ("duringcreditsstinger"),
  so their number tracks fame; no feature reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from stages.core.schema import empty_record, is_sequel_title

TOP_CAST = 10
# Theatrical, limited, premiere first: the rating a film was released with.
_CERT_TYPE_ORDER = (3, 2, 1, 4, 5, 6)

# The bundled sample's `Source` values that TMDB keywords can name (data/sample/movies.json.gz).
BOOK = "Based on Book/Short Story"
COMIC = "Based on Comic/Graphic Novel"
REAL = "Based on Real Life Events"
REMAKE = "Remake"
GAME = "Based on Game"
TV = "Based on TV"
PLAY = "Based on Play"
FOLKLORE = "Traditional/Legend/Fairytale"
SHORT_FILM = "Based on Short Film"
TOY = "Based on Toy"
SPIN_OFF = "Spin-Off"

# The allow-list: TMDB keyword (lower case, as TMDB spells it; the live API's current
# spelling and the older ones in tmdb-dev) -> the sample's category. Only keywords that state
# where the story comes from, a fact of the project before release; themes ("musical",
# "superhero", "fairy tale", "historical figure") and anything else never set a category.
SOURCE_MATERIAL: Mapping[str, str] = {
    # adaptations of written fiction
    "based on novel or book": BOOK,
    "based on novel": BOOK,
    "based on book": BOOK,
    "based on young adult novel": BOOK,
    "based on children's book": BOOK,
    "based on short story": BOOK,
    # comics
    "based on comic": COMIC,
    "based on comic book": COMIC,
    "based on graphic novel": COMIC,
    "based on comic strip": COMIC,
    "based on manga": COMIC,
    # real events
    "biography": REAL,
    "based on true story": REAL,
    "based on true events": REAL,
    "based on real events": REAL,
    "inspired by a true story": REAL,
    "inspired by true events": REAL,
    # remakes
    "remake": REMAKE,
    "remake of french film": REMAKE,
    "remake of japanese film": REMAKE,
    # games, television, stage
    "based on video game": GAME,
    "based on tv series": TV,
    "based on tv show": TV,
    "based on play or musical": PLAY,  # TMDB merges plays and musicals: both are "Play"
    "based on play": PLAY,
    "based on stage musical": PLAY,
    # rarer sample categories
    "based on fairy tale": FOLKLORE,
    "based on folk tale": FOLKLORE,
    "based on short film": SHORT_FILM,
    "based on toy": TOY,
    "spin off": SPIN_OFF,
}
# A film with several: the most specific origin wins (a remake of a novel's film is a remake,
# a biopic from a biography book is real life events), in this order.
SOURCE_PRIORITY: tuple[str, ...] = (
    REMAKE,
    SPIN_OFF,
    COMIC,
    GAME,
    TOY,
    TV,
    PLAY,
    SHORT_FILM,
    REAL,
    FOLKLORE,
    BOOK,
)


def source_material(keywords: Iterable[str]) -> str | None:
    """The sample category the allow-listed keywords name, by SOURCE_PRIORITY; else None."""
    found = {SOURCE_MATERIAL.get(k.strip().casefold()) for k in keywords}
    return next((c for c in SOURCE_PRIORITY if c in found), None)


def _names(items: Any, key: str = "name") -> list[str]:
    if not isinstance(items, list):
        return []
    return [str(x[key]) for x in items if isinstance(x, dict) and x.get(key)]


def _positive(value: Any) -> int | None:
    """TMDB writes 0 for an unknown budget, revenue or runtime."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return None
    return int(value)


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return int(value)


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return float(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _order(c: dict[str, Any]) -> tuple[float, str]:
    """Billing position (a missing or invalid order bills last), then the name."""
    order = _float(c.get("order"))
    return (float("inf") if order is None else order, str(c["name"]))


def _certification(release_dates: Any, countries: Iterable[str]) -> str | None:
    """The first country's rating that has one, preferring the release type it opened with."""
    results = _dict(release_dates).get("results")
    if not isinstance(results, list):
        return None
    by_country: dict[Any, list[Any]] = {}
    for r in results:
        if isinstance(r, dict) and isinstance(r.get("release_dates"), list):
            by_country[r.get("iso_3166_1")] = r["release_dates"]
    for country in countries:
        entries = [
            e
            for e in by_country.get(country, [])
            if isinstance(e, dict) and isinstance(e.get("certification"), str)
            if e["certification"].strip()
        ]
        for rtype in _CERT_TYPE_ORDER:
            for e in entries:
                if e.get("type") == rtype:
                    return str(e["certification"]).strip()
        if entries:
            return str(entries[0]["certification"]).strip()
    return None


def map_details(d: Mapping[str, Any], regions: Sequence[str] = ()) -> dict[str, Any]:
    """TMDB /movie/{id} (with credits, keywords, release_dates) -> normalized record.

    Pure. budget/revenue/runtime 0 become None (unknown). vote_*/popularity are post-release
    values, kept for analysis only (schema.POST_RELEASE). See the module docstring for cast,
    collection, source_material and keywords.
    """
    title = _text(d.get("title")) or _text(d.get("original_title")) or ""
    movie_id = d["id"]
    if isinstance(movie_id, bool) or not isinstance(movie_id, int | str):
        raise TypeError(f"movie id {movie_id!r} is not an integer")
    rec = empty_record(int(movie_id), "tmdb", title)
    credits = _dict(d.get("credits"))
    crew = _list(credits.get("crew"))
    cast = sorted(
        (c for c in _list(credits.get("cast")) if isinstance(c, dict) and _text(c.get("name"))),
        key=_order,
    )
    directors = [
        str(c["name"]).strip()
        for c in crew
        if isinstance(c, dict) and c.get("job") == "Director" and _text(c.get("name"))
    ]
    keywords = _names(_dict(d.get("keywords")).get("keywords"))
    collection = _dict(d.get("belongs_to_collection"))
    countries = [*regions, *([] if "US" in regions else ["US"])]
    rec.update(
        imdb_id=_text(d.get("imdb_id")),
        original_title=_text(d.get("original_title")),
        release_date=_text(d.get("release_date")),
        status=_text(d.get("status")),
        budget=_positive(d.get("budget")),
        runtime=_positive(d.get("runtime")),
        genres=_names(d.get("genres")),
        certification=_certification(d.get("release_dates"), countries),
        production_companies=_names(d.get("production_companies")),
        collection=_text(collection.get("name")),
        is_sequel=is_sequel_title(title),
        original_language=_text(d.get("original_language")),
        director=directors[0] if directors else None,
        cast=[str(c["name"]).strip() for c in cast[:TOP_CAST]],
        keywords=keywords,
        source_material=source_material(keywords),
        revenue=_positive(d.get("revenue")),
        vote_count=_int(d.get("vote_count")),
        vote_average=_float(d.get("vote_average")),
        popularity=_float(d.get("popularity")),
    )
    return rec
