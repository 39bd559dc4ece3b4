"""The TMDB collector's persistent cache: one SQLite file (WAL), committed movie by movie.

It lives outside DVC's outs (DVC deletes outs before a stage runs) and survives between runs:
a rerun, or a run resumed after SIGKILL, fetches only what the cache lacks or what
/movie/changes reported changed since it was fetched. It holds normalized records, never
credentials.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

DB_NAME = "tmdb.sqlite"
SCHEMA_VERSION = "1"
# A film fetched less than this after the end of a day it changed on is refetched once more.
FRESH_MARGIN_S = 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS movies (
    id INTEGER PRIMARY KEY, fetched_at REAL NOT NULL, stale INTEGER NOT NULL DEFAULT 0,
    record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS gone (id INTEGER PRIMARY KEY, reason TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS listing (
    qkey TEXT NOT NULL, id INTEGER NOT NULL, release_date TEXT NOT NULL,
    PRIMARY KEY (qkey, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS listing_date ON listing (qkey, release_date);
CREATE TABLE IF NOT EXISTS windows (
    qkey TEXT NOT NULL, gte TEXT NOT NULL, lte TEXT NOT NULL, total_results INTEGER NOT NULL,
    discovered_at REAL NOT NULL, PRIMARY KEY (qkey, gte));
DROP TABLE IF EXISTS change_seen;
"""


class CacheError(Exception):
    """The cache file cannot be used (corrupt, or written by an incompatible version)."""


def _dumps_record(rec: dict[str, Any]) -> str:
    """Sorted keys and no NaN: the same record is stored, and later written, as the same text."""
    return json.dumps(rec, sort_keys=True, ensure_ascii=False, allow_nan=False)


class TmdbCache:
    """Single-threaded access (the collector's main thread); every write is its own commit."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / DB_NAME
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process (not a power cut) and is fast.
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            version = self.get_meta("schema_version")
        except sqlite3.DatabaseError as exc:
            raise CacheError(f"{self.path}: not a usable SQLite cache ({exc})") from None
        if version is None:
            self.set_meta("schema_version", SCHEMA_VERSION)
        elif version != SCHEMA_VERSION:
            raise CacheError(f"{self.path}: cache schema {version}, expected {SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()

    # meta
    def get_meta(self, key: str) -> str | None:
        """A bookkeeping value (schema version, last change sync); None if never set."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # movies
    def put_movie(self, rec: dict[str, Any], fetched_at: float) -> None:
        """Store a fetched film as fresh, in one commit: a film that came back is no longer gone."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute(
                "INSERT OR REPLACE INTO movies (id, fetched_at, stale, record) VALUES (?, ?, 0, ?)",
                (rec["id"], fetched_at, _dumps_record(rec)),
            )
            self.db.execute("DELETE FROM gone WHERE id = ?", (rec["id"],))

    def put_gone(self, movie_id: int, reason: str) -> None:
        """Remember an id TMDB does not know: not asked again until /movie/changes names it."""
        self.db.execute(
            "INSERT OR REPLACE INTO gone (id, reason, at) VALUES (?, ?, ?)",
            (movie_id, reason, time.time()),
        )

    # discovery
    def windows(self, qkey: str, gte: dt.date, lte: dt.date) -> list[tuple[dt.date, dt.date, int]]:
        """Stored windows of `qkey` lying wholly inside [gte, lte], by date."""
        rows = self.db.execute(
            "SELECT gte, lte, total_results FROM windows WHERE qkey = ? AND gte >= ? AND lte <= ?"
            " ORDER BY gte",
            (qkey, gte.isoformat(), lte.isoformat()),
        ).fetchall()
        return [(dt.date.fromisoformat(a), dt.date.fromisoformat(b), int(n)) for a, b, n in rows]

    def put_window(
        self, qkey: str, gte: dt.date, lte: dt.date, total: int, movies: Sequence[tuple[int, str]]
    ) -> None:
        """Replace what was listed for [gte, lte] by this window's results, in one commit."""
        lo, hi = gte.isoformat(), lte.isoformat()
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute(
                "DELETE FROM windows WHERE qkey = ? AND gte <= ? AND lte >= ?", (qkey, hi, lo)
            )
            self.db.execute(
                "DELETE FROM listing WHERE qkey = ? AND release_date BETWEEN ? AND ?",
                (qkey, lo, hi),
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO listing (qkey, id, release_date) VALUES (?, ?, ?)",
                ((qkey, i, d) for i, d in movies),
            )
            self.db.execute(
                "INSERT INTO windows (qkey, gte, lte, total_results, discovered_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (qkey, lo, hi, total, time.time()),
            )

    # One static statement per purpose; the query keys travel as a JSON array parameter.
    _TO_FETCH = (
        "SELECT DISTINCT l.id FROM (SELECT id FROM listing"
        " WHERE qkey IN (SELECT value FROM json_each(?)) AND release_date BETWEEN ? AND ?) l"
        " LEFT JOIN movies m ON m.id = l.id LEFT JOIN gone g ON g.id = l.id"
        " WHERE g.id IS NULL AND (m.id IS NULL OR m.stale = 1) ORDER BY l.id"
    )
    _COUNT = (
        "SELECT count(DISTINCT id) FROM listing"
        " WHERE qkey IN (SELECT value FROM json_each(?)) AND release_date BETWEEN ? AND ?"
    )
    _RECORDS = (
        "SELECT record FROM movies WHERE id IN (SELECT id FROM listing"
        " WHERE qkey IN (SELECT value FROM json_each(?)) AND release_date BETWEEN ? AND ?)"
        " ORDER BY id"
    )

    @staticmethod
    def _args(qkeys: Sequence[str], gte: dt.date, lte: dt.date) -> tuple[str, str, str]:
        return json.dumps(list(qkeys)), gte.isoformat(), lte.isoformat()

    def to_fetch(self, qkeys: Sequence[str], gte: dt.date, lte: dt.date) -> list[int]:
        """Listed ids in range that are not cached, or stale, and not known to be gone."""
        return [int(r[0]) for r in self.db.execute(self._TO_FETCH, self._args(qkeys, gte, lte))]

    def listed_count(self, qkeys: Sequence[str], gte: dt.date, lte: dt.date) -> int:
        """Distinct ids listed in range by any of `qkeys` (a film can match several queries)."""
        return int(self.db.execute(self._COUNT, self._args(qkeys, gte, lte)).fetchone()[0])

    def records(self, qkeys: Sequence[str], gte: dt.date, lte: dt.date) -> Iterator[str]:
        """Cached records (JSON text) listed in range, by id: streamed, never all in memory."""
        cur = self.db.execute(self._RECORDS, self._args(qkeys, gte, lte))
        while rows := cur.fetchmany(1000):
            for (text,) in rows:
                yield str(text)

    # changes
    def apply_changes(
        self, changed_by_day: Mapping[dt.date, Iterable[int]], synced_at: dt.datetime
    ) -> int:
        """Mark cached films the feed names for a day stale unless fetched after that day;
        one commit with the new sync mark. Returns how many films were marked.

        The feed has days, not times: a film changed on day D may have changed after we
        fetched it on D (a revenue corrected in the afternoon). So a film named for D is
        refetched unless its copy was fetched once D was over (plus FRESH_MARGIN_S for clock
        skew and TMDB's own caching): a film changed today is refetched by every run today
        and by the first run of the next day, never later.
        """
        stale = 0
        with self.db:
            self.db.execute("BEGIN")
            for day, ids in sorted(changed_by_day.items()):
                end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
                fresh_after = end.timestamp() + FRESH_MARGIN_S
                for movie_id in ids:
                    stale += self.db.execute(
                        "UPDATE movies SET stale = 1 WHERE id = ? AND fetched_at < ?",
                        (movie_id, fresh_after),
                    ).rowcount
                    self.db.execute(
                        "DELETE FROM gone WHERE id = ? AND at < ?", (movie_id, fresh_after)
                    )
            self.set_meta("changes_synced_at", synced_at.isoformat())
        return stale
