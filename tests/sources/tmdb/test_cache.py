"""The SQLite cache: windows replace listings, changes mark films fetched before them stale."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from stages.sources.tmdb.cache import FRESH_MARGIN_S, TmdbCache
from stages.sources.tmdb.mapping import map_details
from tests.sources.tmdb.test_mapping import HEAT


def test_cache_window_replaces_listing_and_changes_mark_once(tmp_path: Path) -> None:
    cache = TmdbCache(tmp_path / "c")
    d = dt.date.fromisoformat
    cache.put_window(
        "k", d("2000-01-01"), d("2000-01-31"), 2, [(1, "2000-01-02"), (2, "2000-01-30")]
    )
    cache.put_window("k", d("2000-01-15"), d("2000-01-31"), 1, [(3, "2000-01-20")])
    assert cache.windows("k", d("2000-01-01"), d("2000-12-31")) == [
        (d("2000-01-15"), d("2000-01-31"), 1)
    ]
    assert cache.to_fetch(["k"], d("2000-01-01"), d("2000-01-31")) == [1, 3]
    rec = map_details(HEAT)
    cache.put_movie(dict(rec, id=3), 1.0)
    assert cache.to_fetch(["k"], d("2000-01-01"), d("2000-01-31")) == [1]
    now = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    assert cache.apply_changes({now.date(): {3, 99}}, now) == 1
    assert cache.to_fetch(["k"], d("2000-01-01"), d("2000-01-31")) == [1, 3]
    cache.put_movie(dict(rec, id=3), now.timestamp())  # refetched the same day
    assert cache.apply_changes({now.date(): {3}}, now) == 1  # may predate a later change
    end_of_day = dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp()
    cache.put_movie(dict(rec, id=3), end_of_day + FRESH_MARGIN_S + 1)  # fetched the day after
    later = dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)
    assert cache.apply_changes({now.date(): {3}}, later) == 0  # the copy has that day's change
    assert cache.apply_changes({later.date(): {3}}, later) == 1  # but not today's
    assert cache.get_meta("changes_synced_at") == later.isoformat()
    cache.close()


def test_a_gone_film_named_by_the_feed_is_asked_again(tmp_path: Path) -> None:
    cache = TmdbCache(tmp_path / "c")
    d = dt.date.fromisoformat
    cache.put_window("k", d("2000-01-01"), d("2000-01-31"), 1, [(5, "2000-01-02")])
    cache.put_gone(5, "not_found")
    assert cache.to_fetch(["k"], d("2000-01-01"), d("2000-01-31")) == []
    now = dt.datetime.now(dt.UTC)
    assert cache.apply_changes({now.date(): {5}}, now) == 0  # not cached: nothing marked
    assert cache.to_fetch(["k"], d("2000-01-01"), d("2000-01-31")) == [5]
    cache.close()
