"""The fake TMDB server and a client for it, shared by the TMDB unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stages.sources.tmdb.client import TmdbClient
from stages.sources.tmdb.credentials import Credentials
from stages.sources.tmdb.ratelimit import RateLimiter
from tests.tmdb_server import FakeTmdb, make_catalog

SECRET = "test-token-5f3a9c"


@pytest.fixture
def tmdb() -> Iterator[FakeTmdb]:
    films = make_catalog(300, "2000-01-01", "2000-12-31")
    with FakeTmdb(films, SECRET, max_pages=5, busy_day=("2000-03-03", 150)) as server:
        yield server


def client_for(server: FakeTmdb, max_retries: int = 3, timeout_s: float = 2.0) -> TmdbClient:
    creds = Credentials(base_url=server.url, token=SECRET)
    return TmdbClient(creds, RateLimiter(1000), max_retries, timeout_s, pool_size=4)
