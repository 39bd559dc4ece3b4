"""The HTTP client against the fake TMDB server: auth, 404, 429, retries."""

from __future__ import annotations

import time

import pytest

from stages.sources.tmdb.client import AuthError, NotFound, TmdbError
from stages.sources.tmdb.details import details
from tests.sources.tmdb.conftest import client_for
from tests.tmdb_server import FakeTmdb


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
