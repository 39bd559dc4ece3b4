"""The TMDB client pieces, against the local fake TMDB server over real HTTP."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from stages.core.schema import FIELDS
from stages.sources.tmdb.cache import TmdbCache
from stages.sources.tmdb.client import (
    AuthError,
    Credentials,
    Discoverer,
    NotFound,
    Query,
    RateLimiter,
    TmdbClient,
    TmdbError,
    changed_ids,
    details,
    map_details,
)
from tests.tmdb_server import FakeTmdb, make_catalog

SECRET = "test-token-5f3a9c"

# Trimmed from a real /movie/949?append_to_response=credits,keywords,release_dates answer.
HEAT: dict[str, Any] = {
    "adult": False,
    "belongs_to_collection": None,
    "budget": 60000000,
    "genres": [{"id": 28, "name": "Action"}, {"id": 80, "name": "Crime"}],
    "id": 949,
    "imdb_id": "tt0113277",
    "original_language": "en",
    "original_title": "Heat",
    "popularity": 41.5,
    "production_companies": [
        {"id": 508, "name": "Regency Enterprises"},
        {"id": 675, "name": "Forward Pass"},
        {"id": 6194, "name": "Warner Bros. Pictures"},
    ],
    "release_date": "1995-12-15",
    "revenue": 187436818,
    "runtime": 170,
    "status": "Released",
    "title": "Heat",
    "vote_average": 7.9,
    "vote_count": 7049,
    "credits": {
        "cast": [
            {"name": "Robert De Niro", "order": 1},
            {"name": "Al Pacino", "order": 0},
            {"name": "Val Kilmer", "order": 2},
            {"name": "Jon Voight", "order": 3},
            {"name": "Tom Sizemore", "order": 4},
            {"name": "Diane Venora", "order": 5},
        ],
        "crew": [
            {"name": "Art Linson", "job": "Producer"},
            {"name": "Michael Mann", "job": "Director"},
            {"name": "Michael Mann", "job": "Screenplay"},
        ],
    },
    "keywords": {"keywords": [{"id": 642, "name": "robbery"}, {"id": 703, "name": "detective"}]},
    "release_dates": {
        "results": [
            {
                "iso_3166_1": "DE",
                "release_dates": [{"certification": "16", "type": 3}],
            },
            {
                "iso_3166_1": "US",
                "release_dates": [
                    {"certification": "", "type": 1},
                    {"certification": "NR", "type": 5},
                    {"certification": "R", "type": 3},
                ],
            },
        ]
    },
}


def test_maps_details_to_a_normalized_record() -> None:
    rec = map_details(HEAT)
    assert set(rec) == set(FIELDS)
    assert rec["id"] == 949
    assert rec["data_source"] == "tmdb"
    assert rec["director"] == "Michael Mann"
    assert rec["cast"] == [
        "Al Pacino",
        "Robert De Niro",
        "Val Kilmer",
        "Jon Voight",
        "Tom Sizemore",
    ]
    assert rec["certification"] == "R"  # US theatrical, not the premiere or the DVD
    assert rec["keywords"] == ["robbery", "detective"]
    assert rec["genres"] == ["Action", "Crime"]
    assert rec["production_companies"][2] == "Warner Bros. Pictures"
    assert (rec["budget"], rec["revenue"], rec["runtime"]) == (60000000, 187436818, 170)
    assert rec["collection"] is None
    assert rec["is_sequel"] is False
    assert rec["vote_count"] == 7049


def test_zero_budget_and_revenue_are_unknown_and_region_picks_certification() -> None:
    d = dict(
        HEAT, budget=0, revenue=0, runtime=0, title="Heat 2", belongs_to_collection={"name": "H"}
    )
    rec = map_details(d, regions=("DE",))
    assert (rec["budget"], rec["revenue"], rec["runtime"]) == (None, None, None)
    assert rec["certification"] == "16"
    assert rec["collection"] == "H"
    assert rec["is_sequel"] is True
    assert HEAT["budget"] == 60000000  # input untouched


def test_credentials_come_from_env_and_never_show() -> None:
    assert Credentials.from_env({}) is None
    c = Credentials.from_env({"TMDB_API_KEY": "k1", "TMDB_API_TOKEN": SECRET})
    assert c is not None
    assert c.token == SECRET
    assert c.api_key is None
    assert c.base_url == "https://api.themoviedb.org/3"
    assert SECRET not in repr(c)
    c = Credentials.from_env({"TMDB_API_KEY": "k1", "TMDB_API_BASE_URL": "http://x/3/"})
    assert c is not None
    assert c.api_key == "k1"
    assert c.base_url == "http://x/3"


def max_in_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_limiter_counts_a_slot_until_one_second_after_the_answer() -> None:
    now = [0.0]
    lim = RateLimiter(3, margin_s=0.0, clock=lambda: now[0])
    slots = [lim.acquire() for _ in range(3)]
    got: list[float] = []
    waiter = threading.Thread(target=lambda: (lim.acquire(), got.append(now[0])))
    waiter.start()
    now[0] = 5.0  # all three still in flight: however late, the fourth must wait
    time.sleep(0.05)
    assert got == []
    lim.release(slots[0])  # answered at 5.0: its slot frees at 6.0
    time.sleep(0.05)
    assert got == []
    now[0] = 6.0
    lim.release(slots[1])  # wakes the waiter, which now finds slot 0 expired
    waiter.join(2)
    assert got == [6.0]


def test_limiter_holds_across_threads() -> None:
    lim = RateLimiter(10)
    sent: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(6):
            with lim.slot():
                with lock:
                    sent.append(time.monotonic())
                time.sleep(0.01)  # the request itself

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sent) == 24
    assert max_in_window(sent) <= 10
    assert sent[-1] - min(sent) >= 2.0  # 24 at 10/s cannot finish in under 2 s
    assert sent[-1] - min(sent) < 3.0  # and it is not needlessly slow
    lim.pause(0.5)
    t0 = time.monotonic()
    with lim.slot():
        assert time.monotonic() - t0 >= 0.45


@pytest.fixture
def tmdb() -> Iterator[FakeTmdb]:
    films = make_catalog(300, "2000-01-01", "2000-12-31")
    with FakeTmdb(films, SECRET, max_pages=5, busy_day=("2000-03-03", 150)) as server:
        yield server


def client_for(server: FakeTmdb, max_retries: int = 3, timeout_s: float = 2.0) -> TmdbClient:
    creds = Credentials(base_url=server.url, token=SECRET)
    return TmdbClient(creds, RateLimiter(1000), max_retries, timeout_s, pool_size=4)


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


def test_401_stops_at_once_and_404_is_not_retried(tmdb: FakeTmdb) -> None:
    film = tmdb.films[0]
    client = client_for(tmdb)
    tmdb.missing.add(film.id)
    with pytest.raises(NotFound):
        details(client, film.id)
    tmdb.faults.unauthorized = True
    with pytest.raises(AuthError, match="TMDB_API_TOKEN"):
        details(client, film.id)
    assert len(tmdb.requests("details")) == 2


def test_429_honours_retry_after_then_succeeds(tmdb: FakeTmdb) -> None:
    tmdb.faults.burst_429 = 2
    tmdb.faults.retry_after = "0.5"
    client = client_for(tmdb)
    t0 = time.monotonic()
    body = details(client, tmdb.films[0].id)
    assert body["id"] == tmdb.films[0].id
    assert client.stats["status_429"] == 2
    assert client.stats["retries"] == 2
    assert time.monotonic() - t0 >= 1.0


def test_malformed_body_and_timeouts_are_retried_then_given_up(tmdb: FakeTmdb) -> None:
    bad, slow = tmdb.films[0].id, tmdb.films[1].id
    tmdb.faults.always_malformed.add(bad)
    client = client_for(tmdb, max_retries=2, timeout_s=0.3)
    with pytest.raises(TmdbError) as err:
        details(client, bad)
    assert err.value.reason == "malformed"
    assert tmdb.detail_ids().count(bad) == 3
    tmdb.faults.p_slow, tmdb.faults.slow_s = 1.0, 0.6
    with pytest.raises(TmdbError) as err:
        details(client, slow)
    assert err.value.reason == "timeout"
    tmdb.faults.p_slow, tmdb.faults.p_truncated = 0.0, 1.0
    with pytest.raises(TmdbError) as err:
        details(client, slow)
    assert err.value.reason == "connection"


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
