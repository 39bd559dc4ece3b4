"""TMDB API v3 client: credentials, rate limiter, retrying HTTP, discovery, changes, mapping.

Everything here is driven by `stages.collect` (source `tmdb`); `stages.sources.tmdb.cache` keeps
what was fetched so a rerun (or a run resumed after a kill) only asks for what it lacks.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from stages.core.schema import empty_record, is_sequel_title

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.themoviedb.org/3"
PAGE_SIZE = 20  # results per /discover/movie page
MAX_PAGES = 500  # TMDB answers 400 beyond page 500: one query reaches 10,000 results
CHANGES_MAX_DAYS = 14  # /movie/changes accepts at most 14 days per query
APPEND = "credits,keywords,release_dates"
TOP_CAST = 5
BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 10.0
RETRY_AFTER_CAP_S = 60.0
# A slot ends 1 s after the answer (see RateLimiter): no margin is needed for jitter.
WINDOW_MARGIN_S = 0.0
# Theatrical, limited, premiere first: the rating a film was released with.
_CERT_TYPE_ORDER = (3, 2, 1, 4, 5, 6)


class TmdbError(Exception):
    """A TMDB request failed for good (after retries, or with a status retrying cannot fix)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class AuthError(TmdbError):
    """HTTP 401: the credentials are wrong; retrying cannot help."""


class NotFound(TmdbError):
    """HTTP 404: the id does not exist (any more)."""


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class Credentials:
    """How to authenticate, read from the environment only; repr never shows the secret."""

    base_url: str
    token: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)

    @property
    def secret(self) -> str:
        return self.token or self.api_key or ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Credentials | None:
        token = env.get("TMDB_API_TOKEN", "").strip() or None
        key = env.get("TMDB_API_KEY", "").strip() or None
        base = env.get("TMDB_API_BASE_URL", "").strip() or DEFAULT_BASE_URL
        if token is None and key is None:
            return None
        # A token wins: it travels in a header, never in a URL that could end up in a log.
        return cls(base_url=base.rstrip("/"), token=token, api_key=None if token else key)


class RedactingFilter(logging.Filter):
    """Defence in depth: replace the secret in any log record, whoever formats it."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secret:
            msg = record.getMessage()
            if self.secret in msg:
                record.msg = msg.replace(self.secret, "***")
                record.args = None
        return True


# --------------------------------------------------------------------------- rate limiter


class RateLimiter:
    """At most `rate` requests in any 1-second window, as the *server* sees them.

    A sliding log of request slots. A slot counts from the moment the request may be sent
    until one second after its answer came back (while in flight it always counts). The
    server receives each request between those two moments, so whatever the network or
    scheduling jitter, any N + 1 requests the server sees lie more than 1 s apart.
    Thread-safe; `pause(s)` blocks every caller (used when the server answers 429).
    """

    def __init__(
        self,
        rate: float,
        margin_s: float = WINDOW_MARGIN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.max_in_window = max(1, math.floor(rate))
        # Below 1 request/s, one request per 1/rate seconds.
        self.window_s = max(1.0, self.max_in_window / rate) + margin_s
        self._clock = clock
        self._ends: dict[int, float] = {}  # slot -> answer time + window (inf while in flight)
        self._next = 0
        self._cond = threading.Condition()
        self._paused_until = 0.0

    def acquire(self) -> int:
        """Block until a slot is free; return it (give it back with release())."""
        with self._cond:
            while True:
                now = self._clock()
                if now < self._paused_until:
                    self._cond.wait(self._paused_until - now)
                    continue
                for slot in [k for k, end in self._ends.items() if end <= now]:
                    del self._ends[slot]
                if len(self._ends) < self.max_in_window:
                    self._next += 1
                    self._ends[self._next] = math.inf
                    return self._next
                soonest = min(self._ends.values())
                self._cond.wait(None if soonest == math.inf else max(soonest - now, 0.0005))

    def release(self, slot: int) -> None:
        with self._cond:
            self._ends[slot] = self._clock() + self.window_s
            self._cond.notify_all()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        token = self.acquire()
        try:
            yield
        finally:
            self.release(token)

    def pause(self, seconds: float) -> None:
        with self._cond:
            self._paused_until = max(self._paused_until, self._clock() + seconds)


# --------------------------------------------------------------------------- HTTP client


class Stats:
    """Thread-safe counters for the summary."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n

    def __getitem__(self, key: str) -> int:
        with self._lock:
            return self.counts[key]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
    return min(max(seconds, 0.0), RETRY_AFTER_CAP_S)


class TmdbClient:
    """GET JSON from TMDB with the limiter, bounded connections and retries with backoff."""

    def __init__(
        self,
        creds: Credentials,
        limiter: RateLimiter,
        max_retries: int,
        timeout_s: float,
        pool_size: int,
        stats: Stats | None = None,
    ) -> None:
        self.creds = creds
        self.limiter = limiter
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.stats = stats or Stats()
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["Accept"] = "application/json"
        if creds.token:
            self.session.headers["Authorization"] = f"Bearer {creds.token}"
        self._rng = random.Random()  # jitter only; never affects outputs  # noqa: S311

    def close(self) -> None:
        self.session.close()

    def _backoff(self, attempt: int) -> float:
        return min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt) * (0.5 + self._rng.random() / 2)

    def get_json(self, path: str, params: Mapping[str, Any], kind: str) -> dict[str, Any]:
        """One logical GET. Raises AuthError, NotFound or TmdbError; messages hold no secret."""
        query = dict(params)
        if self.creds.api_key:
            query["api_key"] = self.creds.api_key
        url = self.creds.base_url + path
        reason = "unknown"
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats.add("retries")
            self.stats.add("requests")
            self.stats.add(f"requests_{kind}")
            try:
                with self.limiter.slot():
                    resp = self.session.get(url, params=query, timeout=self.timeout_s)
                    body = resp.content  # read here so a truncated body fails inside the try
            except requests.Timeout:
                reason = "timeout"
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                # str(exc) can hold the full URL (api_key included): keep only its type.
                reason = "connection"
                log.debug("%s: %s", path, type(exc).__name__)
            else:
                status = resp.status_code
                if status == 200:
                    try:
                        data = json.loads(body)
                    except ValueError:
                        data = None
                    if isinstance(data, dict):
                        return data
                    reason = "malformed"
                elif status == 401:
                    raise AuthError(
                        "TMDB rejected the credentials (HTTP 401); set a valid TMDB_API_TOKEN "
                        "(v4 read access token) or TMDB_API_KEY (v3 key)",
                        "unauthorized",
                    )
                elif status == 404:
                    raise NotFound(f"{path}: not found (HTTP 404)", "not_found")
                elif status == 429:
                    self.stats.add("status_429")
                    reason = "rate_limited"
                    wait = _retry_after(resp.headers.get("Retry-After"))
                    if wait is not None and attempt < self.max_retries:
                        self.limiter.pause(wait)  # everyone waits, not only this thread
                        log.debug("%s: 429, Retry-After %.1f s", path, wait)
                        continue
                elif status >= 500:
                    reason = f"http_{status}"
                else:
                    raise TmdbError(f"{path}: HTTP {status}", f"http_{status}")
            self.stats.add(f"retry_{reason}")
            if attempt < self.max_retries:
                time.sleep(self._backoff(attempt))
        raise TmdbError(f"{path}: gave up after {self.max_retries + 1} attempts ({reason})", reason)


# --------------------------------------------------------------------------- mapping


def _names(items: Any, key: str = "name") -> list[str]:
    if not isinstance(items, list):
        return []
    return [str(x[key]) for x in items if isinstance(x, dict) and x.get(key)]


def _positive(value: Any) -> int | None:
    """TMDB writes 0 for an unknown budget, revenue or runtime."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return int(value)


def _certification(release_dates: Any, countries: Iterable[str]) -> str | None:
    results = release_dates.get("results") if isinstance(release_dates, dict) else None
    if not isinstance(results, list):
        return None
    by_country = {r.get("iso_3166_1"): r.get("release_dates") or [] for r in results}
    for country in countries:
        entries = [
            e for e in by_country.get(country, []) if isinstance(e, dict) and e.get("certification")
        ]
        for rtype in _CERT_TYPE_ORDER:
            for e in entries:
                if e.get("type") == rtype:
                    return str(e["certification"]).strip() or None
        if entries:
            return str(entries[0]["certification"]).strip() or None
    return None


def map_details(d: Mapping[str, Any], regions: Iterable[str] = ()) -> dict[str, Any]:
    """TMDB /movie/{id} (with credits, keywords, release_dates) -> normalized record.

    Pure. budget/revenue/runtime 0 become None (unknown). vote_*/popularity are post-release
    values, kept for analysis only (schema.POST_RELEASE).
    """
    title = d.get("title") or d.get("original_title") or ""
    rec = empty_record(int(d["id"]), "tmdb", str(title))
    credits = d.get("credits") if isinstance(d.get("credits"), dict) else {}
    crew = credits.get("crew") or []
    cast = sorted(
        (c for c in credits.get("cast") or [] if isinstance(c, dict) and c.get("name")),
        key=lambda c: (c.get("order", 1_000_000), c.get("name")),
    )
    directors = [c["name"] for c in crew if isinstance(c, dict) and c.get("job") == "Director"]
    kw = d.get("keywords") if isinstance(d.get("keywords"), dict) else {}
    collection = d.get("belongs_to_collection")
    countries = [*regions, *([] if "US" in regions else ["US"])]
    rec.update(
        imdb_id=d.get("imdb_id") or None,
        original_title=d.get("original_title") or None,
        release_date=d.get("release_date") or None,
        status=d.get("status") or None,
        budget=_positive(d.get("budget")),
        runtime=_positive(d.get("runtime")),
        genres=_names(d.get("genres")),
        certification=_certification(d.get("release_dates"), countries),
        production_companies=_names(d.get("production_companies")),
        collection=collection.get("name") if isinstance(collection, dict) else None,
        is_sequel=is_sequel_title(title),
        original_language=d.get("original_language") or None,
        director=directors[0] if directors else None,
        cast=[c["name"] for c in cast[:TOP_CAST]],
        keywords=_names(kw.get("keywords")),
        revenue=_positive(d.get("revenue")),
        vote_count=d.get("vote_count"),
        vote_average=d.get("vote_average"),
        popularity=d.get("popularity"),
    )
    return rec


# --------------------------------------------------------------------------- discovery


@dataclass(frozen=True)
class Query:
    """One discover filter combination; `key` names it in the cache."""

    include_adult: bool
    language: str | None
    region: str | None

    @property
    def key(self) -> str:
        lang, region = self.language or "*", self.region or "*"
        return f"adult={int(self.include_adult)}|lang={lang}|region={region}"

    def params(self) -> dict[str, Any]:
        p: dict[str, Any] = {
            "include_adult": str(self.include_adult).lower(),
            "include_video": "false",
            "sort_by": "primary_release_date.asc",
        }
        if self.language:
            p["with_original_language"] = self.language
        if self.region:
            p["region"] = self.region
        return p


def queries(include_adult: bool, languages: Iterable[str], regions: Iterable[str]) -> list[Query]:
    langs: list[str | None] = list(languages) or [None]
    regs: list[str | None] = list(regions) or [None]
    return [Query(include_adult, lang, reg) for lang in langs for reg in regs]


@dataclass
class Window:
    """A date range answered by one discover query (≤ max_results, or an oversize single day)."""

    gte: dt.date
    lte: dt.date
    total_results: int
    movies: list[tuple[int, str]]  # (id, release_date)
    oversize: bool = False


class Discoverer:
    """Walks /discover/movie over date windows, halving any window above the page cap."""

    def __init__(
        self, client: TmdbClient, pool: ThreadPoolExecutor, max_pages: int = MAX_PAGES
    ) -> None:
        self.client = client
        self.pool = pool
        self.max_pages = max_pages
        self.max_results = max_pages * PAGE_SIZE

    def page(self, q: Query, gte: dt.date, lte: dt.date, page: int) -> dict[str, Any]:
        params = q.params()
        params.update(
            {
                "primary_release_date.gte": gte.isoformat(),
                "primary_release_date.lte": lte.isoformat(),
                "page": page,
            }
        )
        return self.client.get_json("/discover/movie", params, "discover")

    def total(self, q: Query, gte: dt.date, lte: dt.date) -> tuple[int, dict[str, Any]]:
        first = self.page(q, gte, lte, 1)
        return int(first.get("total_results") or 0), first

    def windows(
        self, q: Query, gte: dt.date, lte: dt.date, first: dict[str, Any] | None = None
    ) -> Iterator[Window]:
        """Yield fully paged windows covering [gte, lte], in date order."""
        if first is None:
            first = self.page(q, gte, lte, 1)
        total = int(first.get("total_results") or 0)
        if total > self.max_results and gte < lte:
            mid = gte + (lte - gte) // 2
            log.debug("discover %s..%s: %s results, splitting", gte, lte, total)
            yield from self.windows(q, gte, mid)
            yield from self.windows(q, mid + dt.timedelta(days=1), lte)
            return
        oversize = total > self.max_results
        if oversize:
            log.warning(
                "discover %s: %s results on a single day, TMDB pages only the first %s; "
                "%s films of that day are missing",
                gte,
                total,
                self.max_results,
                total - self.max_results,
            )
        pages = min(int(first.get("total_pages") or 0), self.max_pages)
        bodies = [first]
        if pages > 1:
            bodies += self.pool.map(lambda p: self.page(q, gte, lte, p), range(2, pages + 1))
        lo, hi = gte.isoformat(), lte.isoformat()
        seen: dict[int, str] = {}
        for body in bodies:
            for r in body.get("results") or []:
                date = r.get("release_date") or ""
                if not isinstance(r.get("id"), int) or not lo <= date <= hi:
                    self.client.stats.add("discover_outside_window")
                    continue
                seen[r["id"]] = date
        if len(seen) < min(total, self.max_results):
            log.warning(
                "discover %s..%s: %s results announced, %s distinct received (list changed "
                "while paging)",
                gte,
                lte,
                total,
                len(seen),
            )
        yield Window(gte, lte, total, sorted(seen.items()), oversize)


# --------------------------------------------------------------------------- changes


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


def details(client: TmdbClient, movie_id: int) -> dict[str, Any]:
    return client.get_json(f"/movie/{movie_id}", {"append_to_response": APPEND}, "details")
