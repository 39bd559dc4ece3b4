"""Discovery against the fake TMDB server: window splitting and the page cap."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

from stages.sources.tmdb.discover import Discoverer, Query
from tests.sources.tmdb.conftest import client_for
from tests.tmdb_server import FakeTmdb


def test_discovery_splits_windows_and_reports_an_oversize_day(tmdb: FakeTmdb) -> None:
    client = client_for(tmdb)
    with ThreadPoolExecutor(4) as pool:
        disc = Discoverer(client, pool, max_pages=5)  # the server's cap: 100 results a query
        q = Query(include_adult=False, language=None, region=None)
        windows = list(disc.windows(q, dt.date(2000, 1, 1), dt.date(2000, 12, 31)))
    ids = [i for w in windows for i, _ in w.movies]
    expected = {f.id for f in tmdb.in_range("2000-01-01", "2000-12-31")}
    oversize = [w for w in windows if w.oversize]
    assert [(w.gte, w.lte, w.total_results) for w in oversize] == [
        (
            dt.date(2000, 3, 3),
            dt.date(2000, 3, 3),
            150 + sum(1 for f in tmdb.in_range("2000-03-03", "2000-03-03") if f.id < 50_000_000),
        )
    ]
    assert len(ids) == len(set(ids))  # windows do not overlap
    # Everything but what TMDB cannot page on the oversize day, and that day's first 100.
    assert set(ids) <= expected
    assert expected - set(ids) == {f.id for f in tmdb.in_range("2000-03-03", "2000-03-03")} - set(
        oversize[0].movies[i][0] for i in range(100)
    )
    assert all(w.total_results <= 100 for w in windows if not w.oversize)
    assert windows == sorted(windows, key=lambda w: w.gte)
    assert all(int(p["page"]) <= 5 for _, _, p in tmdb.requests("discover"))
