"""Reading /movie/changes from the fake TMDB server."""

from __future__ import annotations

import datetime as dt

from stages.sources.tmdb.changes import changed_ids
from tests.sources.tmdb.conftest import client_for
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
