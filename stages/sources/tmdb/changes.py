"""Change sync: /movie/changes since the last run marks the cached films it names stale."""

from __future__ import annotations

import datetime as dt

from stages.sources.tmdb.cache import TmdbCache
from stages.sources.tmdb.client import TmdbClient

CHANGES_MAX_DAYS = 14  # /movie/changes accepts at most 14 days per query


def changed_ids(client: TmdbClient, start: dt.date, end: dt.date) -> set[int]:
    """Ids /movie/changes reports for [start, end], in queries of at most 14 days, all pages."""
    ids: set[int] = set()
    day = start
    while day <= end:
        stop = min(end, day + dt.timedelta(days=CHANGES_MAX_DAYS - 1))
        page, pages = 1, 1
        while page <= pages:
            body = client.get_json(
                "/movie/changes",
                {"start_date": day.isoformat(), "end_date": stop.isoformat(), "page": page},
                "changes",
            )
            ids.update(r["id"] for r in body.get("results") or [] if isinstance(r.get("id"), int))
            pages = int(body.get("total_pages") or 1)
            page += 1
        day = stop + dt.timedelta(days=1)
    return ids


def sync_changes(client: TmdbClient, cache: TmdbCache) -> int:
    """Read /movie/changes since the last sync; mark cached movies it names stale.

    The day of the last sync is read again (it may have changed since), so a rerun refetches
    what changed after it; returns how many cached films were marked.
    """
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    today = now.date()
    last = cache.get_meta("changes_synced_at")
    start = dt.datetime.fromisoformat(last).date() if last else today
    start = min(start, today)
    seen: dict[dt.date, set[int]] = {start: changed_ids(client, start, start)}
    if today > start:
        rest = changed_ids(client, start + dt.timedelta(days=1), today)
        seen[today] = seen.get(today, set()) | rest
    return cache.apply_changes(seen, now)
