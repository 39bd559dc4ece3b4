"""Change sync: /movie/changes since the last run marks the cached films it names stale.

The feed lists ids per query range without saying on which day each changed, so it is read
one day at a time: each id is filed under the day it changed, and a film is refetched only
if its cached copy may predate that change (TmdbCache.apply_changes).
"""

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


def changed_by_day(client: TmdbClient, start: dt.date, end: dt.date) -> dict[dt.date, set[int]]:
    """The ids /movie/changes reports for each day of [start, end] (one query per day)."""
    days = [start + dt.timedelta(days=k) for k in range((end - start).days + 1)]
    return {day: changed_ids(client, day, day) for day in days}


def sync_changes(client: TmdbClient, cache: TmdbCache, now: dt.datetime | None = None) -> int:
    """Read /movie/changes for every day from the last sync's day to today (UTC); mark the
    cached films it names stale unless fetched after the day they changed on.

    The day of the last sync is read again, since films may have changed later that day.
    A first sync reads today only (whatever is cached was fetched today or is unknown).
    Returns how many cached films were marked.
    """
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    today = now.date()
    last = cache.get_meta("changes_synced_at")
    start = dt.datetime.fromisoformat(last).date() if last else today
    start = min(start, today)
    return cache.apply_changes(changed_by_day(client, start, today), now)
