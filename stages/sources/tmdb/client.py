"""The TMDB HTTP client: one logical GET with auth, the rate limiter and retries with backoff.

Errors come out as TmdbError (or AuthError, NotFound) whose messages never hold the secret:
callers decide whether to skip a film or stop the run.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from stages.sources.tmdb.credentials import Credentials
from stages.sources.tmdb.ratelimit import RateLimiter

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 10.0
RETRY_AFTER_CAP_S = 60.0


class TmdbError(Exception):
    """A TMDB request failed for good (after retries, or with a status retrying cannot fix)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class AuthError(TmdbError):
    """HTTP 401: the credentials are wrong; retrying cannot help."""


class NotFound(TmdbError):
    """HTTP 404: the id does not exist (any more)."""


class Stats:
    """Thread-safe counters: worker threads count requests, the summary reads them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def __getitem__(self, key: str) -> int:
        with self._lock:
            return self._counts[key]


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header, capped; None for an absent or HTTP-date value."""
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
            if attempt < self.max_retries:
                time.sleep(self._backoff(attempt))
        raise TmdbError(f"{path}: gave up after {self.max_retries + 1} attempts ({reason})", reason)
