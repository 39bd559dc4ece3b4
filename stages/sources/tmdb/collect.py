"""Collect a release-date range from TMDB: sync changes, discover, fetch details, write.

Everything fetched goes to the cache first and the output is written from the cache, so a
rerun, or a run resumed after a kill, asks TMDB only for what the cache lacks.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from stages.core.cli import UserError
from stages.sources.jsonl import write_lines
from stages.sources.params import CollectParams
from stages.sources.tmdb.cache import CacheError, TmdbCache
from stages.sources.tmdb.changes import sync_changes
from stages.sources.tmdb.client import AuthError, Stats, TmdbClient, TmdbError
from stages.sources.tmdb.credentials import Credentials, RedactingFilter
from stages.sources.tmdb.details import fetch_details
from stages.sources.tmdb.discover import Discoverer, discover_query, queries
from stages.sources.tmdb.ratelimit import RateLimiter

log = logging.getLogger(__name__)


# A run in which more than this share of the detail requests failed (after retries; a 404 is an
# answer, not a failure) writes no snapshot: the stage fails and the previous one stays.
MAX_FAILED_SHARE = 0.5


def check_failures(asked: int, skipped: Counter[str], base_url: str, cache_dir: Path) -> None:
    """A UserError when more than MAX_FAILED_SHARE of the `asked` detail requests failed."""
    failed = {k: v for k, v in skipped.items() if k != "not_found"}
    n = sum(failed.values())
    if asked and n / asked > MAX_FAILED_SHARE:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(failed.items()))
        raise UserError(
            f"TMDB at {base_url}: {n} of {asked} detail requests failed ({reasons}), more than "
            f"{MAX_FAILED_SHARE:.0%}; no snapshot written, rerun later to resume "
            f"(fetched films are kept in {cache_dir})"
        )


def collect_tmdb(
    params: CollectParams, cache_dir: Path, output: Path, env: Mapping[str, str]
) -> dict[str, Any]:
    """Collect [release_date_gte, release_date_lte] from TMDB into `output`; return the summary.

    The summary's top level describes what was collected; its `run` entry this run's traffic
    (requests, retries, skips, time), which differs from one run to the next. The output is
    streamed from the cache while it is open, so it never sits in memory.
    """
    creds = Credentials.from_env(env)
    if creds is None:
        raise UserError(
            "collect.source is 'tmdb' but neither TMDB_API_TOKEN (v4 read access token) nor "
            "TMDB_API_KEY (v3 key) is set; export one, or set collect.source: sample"
        )
    redact = RedactingFilter(creds.secret)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
    gte, lte = params.release_date_gte, params.release_date_lte  # ordered: CollectParams
    started = time.monotonic()
    stats = Stats()
    skipped: Counter[str] = Counter()
    try:
        cache = TmdbCache(cache_dir)
    except CacheError as exc:
        raise UserError(f"{exc}; delete the directory {cache_dir} to start afresh") from None
    client = TmdbClient(
        creds,
        RateLimiter(params.rate_limit),
        params.max_retries,
        params.timeout_s,
        pool_size=params.concurrency,
        stats=stats,
    )
    pool = ThreadPoolExecutor(params.concurrency, thread_name_prefix="tmdb")
    qs = queries(params.include_adult, params.languages, params.regions)
    qkeys = [q.key for q in qs]
    try:
        marked = sync_changes(client, cache)
        disc = Discoverer(client, pool)
        for q in qs:
            discover_query(disc, cache, q, gte, lte, stats)
        todo = cache.to_fetch(qkeys, gte, lte)
        listed = cache.listed_count(qkeys, gte, lte)
        log.info("collect: %s films listed, %s to fetch", listed, len(todo))
        fetched = fetch_details(
            client, cache, pool, todo, params.concurrency, params.regions, skipped
        )
        check_failures(len(todo), skipped, creds.base_url, cache_dir)
        n = write_lines(output, cache.records(qkeys, gte, lte))
        oversize = [
            {"date": a.isoformat(), "query": q.key, "total_results": total}
            for q in qs
            for a, _b, total in cache.windows(q.key, gte, lte)
            if total > disc.max_results
        ]
    except AuthError as exc:
        raise UserError(str(exc)) from None
    except TmdbError as exc:
        raise UserError(
            f"TMDB at {creds.base_url}: {exc}; rerun later to resume "
            f"(fetched films are kept in {cache_dir})"
        ) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        client.close()
        cache.close()
    elapsed = time.monotonic() - started
    # What was collected: the same for the same TMDB state, so an unchanged rerun leaves the
    # summary (a DVC output) and dvc.lock as they were. This run's traffic goes to `run`.
    summary: dict[str, Any] = {
        "source": "tmdb",
        "release_date_gte": gte.isoformat(),
        "release_date_lte": lte.isoformat(),
        "movies": n,
        "listed": listed,
        "unavailable": listed - n,
        "oversize_days": oversize,
    }
    summary["run"] = {
        "fetched": fetched,
        "changed_marked_stale": marked,
        "requests": stats["requests"],
        "requests_by_kind": {k: stats[f"requests_{k}"] for k in ("changes", "discover", "details")},
        "retries": stats["retries"],
        "status_429": stats["status_429"],
        "skipped": dict(sorted(skipped.items())),
        "windows": {"reused": stats["windows_reused"], "discovered": stats["windows_discovered"]},
        "elapsed_s": round(elapsed, 3),
    }
    run = summary["run"]
    log.info(
        "collect: %s movies written, %s requests, %s retries, %s 429s, %s skipped ids %s, "
        "%s oversize days, %.1f s",
        n,
        run["requests"],
        run["retries"],
        run["status_429"],
        sum(skipped.values()),
        run["skipped"],
        len(oversize),
        elapsed,
    )
    return summary
