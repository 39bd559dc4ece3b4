"""Reading /movie/changes from the fake TMDB server, and the change sync."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from stages.sources.tmdb.cache import TmdbCache
from stages.sources.tmdb.changes import changed_by_day, changed_ids, sync_changes
from stages.sources.tmdb.mapping import map_details
from tests.sources.tmdb.conftest import client_for
from tests.sources.tmdb.test_mapping import HEAT
from tests.tmdb_server import FakeTmdb


def test_changes_are_read_in_queries_of_at_most_14_days(tmdb: FakeTmdb) -> None:
    today = dt.date(2026, 3, 31)
    for k in range(40):
        tmdb.change([1000 + k], (today - dt.timedelta(days=k)).isoformat())
    got = changed_ids(client_for(tmdb), today - dt.timedelta(days=35), today)
    assert got == {1000 + k for k in range(36)}
    spans = [
        (dt.date.fromisoformat(p["end_date"]) - dt.date.fromisoformat(p["start_date"])).days
        for _, _, p in tmdb.requests("changes")
    ]
    assert len(spans) == 3
    assert max(spans) <= 13


def at(day: str, hour: int) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), dt.UTC)


def test_each_id_is_filed_under_the_day_it_changed(tmdb: FakeTmdb) -> None:
    tmdb.change([1], "2026-03-01")
    tmdb.change([2], "2026-03-03")
    tmdb.change([1, 3], "2026-03-04")
    d = dt.date.fromisoformat
    got = changed_by_day(client_for(tmdb), d("2026-03-01"), d("2026-03-04"))
    assert got == {
        d("2026-03-01"): {1},
        d("2026-03-02"): set(),
        d("2026-03-03"): {2},
        d("2026-03-04"): {1, 3},
    }


def test_sync_refetches_what_changed_after_its_fetch_and_only_that(
    tmdb: FakeTmdb, tmp_path: Path
) -> None:
    cache = TmdbCache(tmp_path / "cache")
    client = client_for(tmdb)
    rec = map_details(HEAT)
    assert sync_changes(client, cache, at("2026-03-01", 9)) == 0  # first sync: a mark
    # Fetched on the 1st at 10:00: film 11 changed that afternoon, film 12 the next day.
    for i in (10, 11, 12, 13):
        cache.put_movie(dict(rec, id=i), at("2026-03-01", 10).timestamp())
    tmdb.change([11], "2026-03-01")
    assert sync_changes(client, cache, at("2026-03-01", 18)) == 1  # the same day: refetched
    stale = {r[0] for r in cache.db.execute("SELECT id FROM movies WHERE stale = 1")}
    assert stale == {11}
    cache.put_movie(dict(rec, id=11), at("2026-03-01", 19).timestamp())  # refetched at 19:00
    # Three days later: film 12 changed on the 2nd, film 13 on the 2nd, refetched on the 3rd.
    tmdb.change([12, 13], "2026-03-02")
    cache.put_movie(dict(rec, id=13), at("2026-03-03", 8).timestamp())
    n = len(tmdb.requests("changes"))
    assert sync_changes(client, cache, at("2026-03-04", 6)) == 2
    stale = {r[0] for r in cache.db.execute("SELECT id FROM movies WHERE stale = 1")}
    # 11: it may have changed again after 19:00 on the 1st (the feed has no times); 12 changed
    # after its fetch; 13 was fetched after the day it changed on, so it is not marked.
    assert stale == {11, 12}
    days = [p["start_date"] for _, _, p in tmdb.requests("changes")[n:]]
    assert days == ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]
    assert cache.get_meta("changes_synced_at") == at("2026-03-04", 6).isoformat()
    cache.close()
