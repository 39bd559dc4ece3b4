"""Discovery: list every film of a date range through /discover/movie, reusing the cache.

TMDB pages at most MAX_PAGES x PAGE_SIZE results per query, so a window with more is halved
until it fits (or is a single day, which is then reported as oversize).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from stages.sources.tmdb.cache import TmdbCache
from stages.sources.tmdb.client import Stats, TmdbClient

log = logging.getLogger(__name__)

PAGE_SIZE = 20  # results per /discover/movie page
MAX_PAGES = 500  # TMDB answers 400 beyond page 500: one query reaches 10,000 results


@dataclass(frozen=True)
class Query:
    """One discover filter combination; `key` names it in the cache."""

    include_adult: bool
    language: str | None
    region: str | None

    @property
    def key(self) -> str:
        lang, region = self.language or "*", self.region or "*"
        return f"adult={int(self.include_adult)}|lang={lang}|region={region}"

    def params(self) -> dict[str, Any]:
        p: dict[str, Any] = {
            "include_adult": str(self.include_adult).lower(),
            "include_video": "false",
            "sort_by": "primary_release_date.asc",
        }
        if self.language:
            p["with_original_language"] = self.language
        if self.region:
            p["region"] = self.region
        return p


def queries(include_adult: bool, languages: Iterable[str], regions: Iterable[str]) -> list[Query]:
    """One query per language x region: discover filters by one of each at a time."""
    langs: list[str | None] = list(languages) or [None]
    regs: list[str | None] = list(regions) or [None]
    return [Query(include_adult, lang, reg) for lang in langs for reg in regs]


@dataclass
class Window:
    """A date range answered by one discover query (≤ max_results, or an oversize single day)."""

    gte: dt.date
    lte: dt.date
    total_results: int
    movies: list[tuple[int, str]]  # (id, release_date)
    oversize: bool = False


class Discoverer:
    """Walks /discover/movie over date windows, halving any window above the page cap."""

    def __init__(
        self, client: TmdbClient, pool: ThreadPoolExecutor, max_pages: int = MAX_PAGES
    ) -> None:
        self.client = client
        self.pool = pool
        self.max_pages = max_pages
        self.max_results = max_pages * PAGE_SIZE

    def page(self, q: Query, gte: dt.date, lte: dt.date, page: int) -> dict[str, Any]:
        params = q.params()
        params.update(
            {
                "primary_release_date.gte": gte.isoformat(),
                "primary_release_date.lte": lte.isoformat(),
                "page": page,
            }
        )
        return self.client.get_json("/discover/movie", params, "discover")

    def total(self, q: Query, gte: dt.date, lte: dt.date) -> tuple[int, dict[str, Any]]:
        """The window's result count now, with page 1 so a changed window need not ask again."""
        first = self.page(q, gte, lte, 1)
        return int(first.get("total_results") or 0), first

    def windows(
        self, q: Query, gte: dt.date, lte: dt.date, first: dict[str, Any] | None = None
    ) -> Iterator[Window]:
        """Yield fully paged windows covering [gte, lte], in date order."""
        if first is None:
            first = self.page(q, gte, lte, 1)
        total = int(first.get("total_results") or 0)
        if total > self.max_results and gte < lte:
            mid = gte + (lte - gte) // 2
            log.debug("discover %s..%s: %s results, splitting", gte, lte, total)
            yield from self.windows(q, gte, mid)
            yield from self.windows(q, mid + dt.timedelta(days=1), lte)
            return
        oversize = total > self.max_results
        if oversize:
            log.warning(
                "discover %s: %s results on a single day, TMDB pages only the first %s; "
                "%s films of that day are missing",
                gte,
                total,
                self.max_results,
                total - self.max_results,
            )
        pages = min(int(first.get("total_pages") or 0), self.max_pages)
        bodies = [first]
        if pages > 1:
            bodies += self.pool.map(lambda p: self.page(q, gte, lte, p), range(2, pages + 1))
        lo, hi = gte.isoformat(), lte.isoformat()
        seen: dict[int, str] = {}
        for body in bodies:
            for r in body.get("results") or []:
                date = r.get("release_date") or ""
                if isinstance(r.get("id"), int) and lo <= date <= hi:
                    seen[r["id"]] = date
        if len(seen) < min(total, self.max_results):
            log.warning(
                "discover %s..%s: %s results announced, %s distinct received (list changed "
                "while paging)",
                gte,
                lte,
                total,
                len(seen),
            )
        yield Window(gte, lte, total, sorted(seen.items()), oversize)


def discover_query(
    disc: Discoverer, cache: TmdbCache, q: Query, gte: dt.date, lte: dt.date, stats: Stats
) -> None:
    """List every film of [gte, lte] for `q`: reuse stored windows whose count is unchanged."""
    covered: list[tuple[dt.date, dt.date]] = []
    for a, b, stored in cache.windows(q.key, gte, lte):
        total, first = disc.total(q, a, b)
        if total == stored:
            stats.add("windows_reused")
        else:
            _store(cache, q, disc.windows(q, a, b, first), stats)
        covered.append((a, b))
    day = gte
    gaps: list[tuple[dt.date, dt.date]] = []
    for a, b in [*covered, (lte + dt.timedelta(days=1), lte)]:
        if day < a:
            gaps.append((day, a - dt.timedelta(days=1)))
        day = max(day, b + dt.timedelta(days=1))
    for a, b in gaps:
        _store(cache, q, disc.windows(q, a, b), stats)


def _store(cache: TmdbCache, q: Query, windows: Iterable[Window], stats: Stats) -> None:
    """Commit each window as it is paged, so a killed run keeps what it discovered."""
    for w in windows:
        cache.put_window(q.key, w.gte, w.lte, w.total_results, w.movies)
        stats.add("windows_discovered")
