"""The SQLite cache: windows replace listings, changes mark films stale once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from stages.sources.tmdb.cache import TmdbCache
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
    cache.put_movie(dict(rec, id=3), 2.0)
    assert cache.apply_changes({now.date(): {3}}, now) == 0  # already handled for that day
    assert cache.get_meta("changes_synced_at") == now.isoformat()
    cache.close()
