"""DVC stage `collect`: gather movies from the configured source as normalized records (JSONL)."""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import logging
import os
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tqdm import tqdm

from stages.core.cli import UserError, run
from stages.core.io import atomic_open, write_json
from stages.core.params import load_section
from stages.core.pushgateway import record
from stages.core.schema import empty_record, is_sequel_title
from stages.sources.tmdb.cache import CacheError, TmdbCache
from stages.sources.tmdb.client import (
    AuthError,
    Credentials,
    Discoverer,
    NotFound,
    Query,
    RateLimiter,
    RedactingFilter,
    Stats,
    TmdbClient,
    TmdbError,
    changed_ids,
    details,
    map_details,
    queries,
)

log = logging.getLogger(__name__)

SAMPLE_FIELDS: tuple[str, ...] = (
    "Title",
    "US Gross",
    "Worldwide Gross",
    "US DVD Sales",
    "Production Budget",
    "Release Date",
    "MPAA Rating",
    "Running Time min",
    "Distributor",
    "Source",
    "Major Genre",
    "Creative Type",
    "Director",
    "Rotten Tomatoes Rating",
    "IMDB Rating",
    "IMDB Votes",
)


@dataclass(frozen=True)
class CollectParams:
    source: Literal["sample", "tmdb"]
    release_date_gte: dt.date
    release_date_lte: dt.date
    rate_limit: float
    concurrency: int
    max_retries: int
    timeout_s: float
    include_adult: bool
    languages: tuple[str, ...]
    regions: tuple[str, ...]


def parse_sample_date(text: Any) -> str | None:
    """The sample writes dates as 'Jun 12 1998'; return ISO 'YYYY-MM-DD' or None."""
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.strptime(text.strip(), "%b %d %Y").date().isoformat()
    except ValueError:
        return None


def sample_to_record(index: int, row: dict[str, Any]) -> dict[str, Any]:
    """Map one sample row to a normalized record, values as found: cleaning is prepare's job."""
    title = row["Title"]
    rec = empty_record(index + 1, "sample", title)
    genre = row["Major Genre"]
    rec.update(
        original_title=title,
        release_date=parse_sample_date(row["Release Date"]),
        status="Released",
        budget=row["Production Budget"],
        revenue=row["Worldwide Gross"],
        us_gross=row["US Gross"],
        dvd_sales=row["US DVD Sales"],
        runtime=row["Running Time min"],
        genres=[genre] if genre else [],
        certification=row["MPAA Rating"],
        distributor=row["Distributor"],
        is_sequel=is_sequel_title(title),
        director=row["Director"],
        source_material=row["Source"],
        creative_type=row["Creative Type"],
        vote_count=row["IMDB Votes"],
        vote_average=row["IMDB Rating"],
        rt_rating=row["Rotten Tomatoes Rating"],
    )
    return rec


def map_sample(rows: Sequence[Any], path: str) -> list[dict[str, Any]]:
    records = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise UserError(
                f"{path}: record {i + 1} is not a JSON object; restore the file from git"
            )
        missing = [f for f in SAMPLE_FIELDS if f not in row]
        if missing:
            raise UserError(
                f"{path}: record {i + 1} has no field '{missing[0]}'; "
                f"restore the file from git (git checkout -- {path})"
            )
        records.append(sample_to_record(i, row))
    return records


def read_sample(path: Path) -> list[Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: sample file not found; restore it with git checkout") from None
    try:
        text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        data = json.loads(text)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot be decompressed ({exc}); restore it from git") from None
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "restore it from git"
        ) from None
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON array of movies; restore it from git")
    return data


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    n = 0
    with atomic_open(path) as fh:
        for rec in sorted(records, key=lambda r: r["id"]):
            fh.write(json.dumps(rec, sort_keys=True, ensure_ascii=False) + "\n")
            n += 1
    return n


# ---------------------------------------------------------------------------- TMDB


def sync_changes(client: TmdbClient, cache: TmdbCache) -> int:
    """Read /movie/changes since the last sync; mark cached movies it names stale."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    today = now.date()
    last = cache.get_meta("changes_synced_at")
    start = dt.datetime.fromisoformat(last).date() if last else today
    start = min(start, today)
    seen: dict[dt.date, set[int]] = {start: changed_ids(client, start, start)}
    if today > start:
        rest = changed_ids(client, start + dt.timedelta(days=1), today)
        seen[today] = seen.get(today, set()) | rest
    return cache.apply_changes(seen, now)


def discover_query(
    disc: Discoverer, cache: TmdbCache, q: Query, gte: dt.date, lte: dt.date, stats: Stats
) -> None:
    """List every film of [gte, lte] for `q`: reuse stored windows whose count is unchanged."""
    covered: list[tuple[dt.date, dt.date]] = []
    for a, b, stored in cache.windows(q.key, gte, lte):
        total, first = disc.total(q, a, b)
        if total == stored:
            stats.add("windows_reused")
        else:
            for w in disc.windows(q, a, b, first):
                cache.put_window(q.key, w.gte, w.lte, w.total_results, w.movies)
                stats.add("windows_discovered")
        covered.append((a, b))
    day = gte
    gaps: list[tuple[dt.date, dt.date]] = []
    for a, b in [*covered, (lte + dt.timedelta(days=1), lte)]:
        if day < a:
            gaps.append((day, a - dt.timedelta(days=1)))
        day = max(day, b + dt.timedelta(days=1))
    for a, b in gaps:
        for w in disc.windows(q, a, b):
            cache.put_window(q.key, w.gte, w.lte, w.total_results, w.movies)
            stats.add("windows_discovered")


def fetch_one(client: TmdbClient, movie_id: int, regions: Sequence[str]) -> tuple[int, str, Any]:
    """Details of one film -> (id, "ok", record) or (id, skip reason, None)."""
    try:
        return movie_id, "ok", map_details(details(client, movie_id), regions)
    except NotFound:
        return movie_id, "not_found", None
    except AuthError:
        raise
    except TmdbError as exc:
        log.warning("movie %s skipped: %s", movie_id, exc)
        return movie_id, exc.reason, None
    except (KeyError, TypeError, ValueError, AttributeError):
        log.warning("movie %s skipped: details are not a TMDB movie object", movie_id)
        return movie_id, "malformed", None


def fetch_details(
    client: TmdbClient,
    cache: TmdbCache,
    pool: ThreadPoolExecutor,
    todo: list[int],
    params: CollectParams,
    skipped: Counter[str],
) -> int:
    """Fetch `todo` with at most 2 x concurrency in flight; commit each film as it arrives."""
    fetched = 0
    ids = iter(todo)
    inflight: set[Future[tuple[int, str, Any]]] = set()
    bar = tqdm(total=len(todo), unit="movie", mininterval=1.0, disable=None, desc="details")
    try:
        while True:
            while len(inflight) < 2 * params.concurrency:
                movie_id = next(ids, None)
                if movie_id is None:
                    break
                inflight.add(pool.submit(fetch_one, client, movie_id, params.regions))
            if not inflight:
                return fetched
            done, inflight = wait(inflight, return_when=FIRST_COMPLETED)
            for fut in done:
                movie_id, status, rec = fut.result()
                if status == "ok":
                    cache.put_movie(rec, time.time())
                    fetched += 1
                else:
                    skipped[status] += 1
                    if status == "not_found":  # not asked again unless /movie/changes names it
                        cache.put_gone(movie_id, status)
                bar.update(1)
    finally:
        bar.close()
        for fut in inflight:
            fut.cancel()


def collect_tmdb(
    params: CollectParams, cache_dir: Path, output: Path, env: Mapping[str, str]
) -> dict[str, Any]:
    """Collect [release_date_gte, release_date_lte] from TMDB into `output`; return the summary."""
    creds = Credentials.from_env(env)
    if creds is None:
        raise UserError(
            "collect.source is 'tmdb' but neither TMDB_API_TOKEN (v4 read access token) nor "
            "TMDB_API_KEY (v3 key) is set; export one, or set collect.source: sample"
        )
    redact = RedactingFilter(creds.secret)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
    gte, lte = params.release_date_gte, params.release_date_lte
    if gte > lte:
        raise UserError(
            f"params.yaml: collect.release_date_gte {gte} is after release_date_lte {lte}; "
            "swap them"
        )
    if params.rate_limit <= 0 or params.concurrency < 1 or params.timeout_s <= 0:
        raise UserError(
            "params.yaml: collect.rate_limit, concurrency and timeout_s must be positive"
        )
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
        log.info(
            "collect: %s films listed, %s to fetch", cache.listed_count(qkeys, gte, lte), len(todo)
        )
        fetched = fetch_details(client, cache, pool, todo, params, skipped)
        n = 0
        with atomic_open(output) as fh:
            for line in cache.records(qkeys, gte, lte):
                fh.write(line + "\n")
                n += 1
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
    summary: dict[str, Any] = {
        "source": "tmdb",
        "release_date_gte": gte.isoformat(),
        "release_date_lte": lte.isoformat(),
        "movies": n,
        "fetched": fetched,
        "changed_marked_stale": marked,
        "requests": stats["requests"],
        "requests_by_kind": {k: stats[f"requests_{k}"] for k in ("changes", "discover", "details")},
        "retries": stats["retries"],
        "status_429": stats["status_429"],
        "skipped": dict(sorted(skipped.items())),
        "oversize_days": oversize,
        "windows": {"reused": stats["windows_reused"], "discovered": stats["windows_discovered"]},
        "elapsed_s": round(elapsed, 3),
    }
    log.info(
        "collect: %s movies written, %s requests, %s retries, %s 429s, %s skipped ids %s, "
        "%s oversize days, %.1f s",
        n,
        summary["requests"],
        summary["retries"],
        summary["status_429"],
        sum(skipped.values()),
        summary["skipped"],
        len(oversize),
        elapsed,
    )
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--sample", type=Path, required=True, help="bundled sample (JSON, gzip)")
    parser.add_argument("--output", type=Path, required=True, help="normalized records (JSONL)")
    parser.add_argument("--summary", type=Path, required=True, help="collection summary (JSON)")
    parser.add_argument(
        "--cache", type=Path, help="TMDB cache directory, kept between runs (source tmdb)"
    )
    args = parser.parse_args(argv)
    params = load_section(CollectParams, "collect", args.params)

    if params.source == "tmdb":
        if args.cache is None:
            raise UserError("collect: source 'tmdb' needs --cache DIR (see dvc.yaml)")
        summary = collect_tmdb(params, args.cache, args.output, os.environ)
        write_json(args.summary, summary)
        return 0
    records = map_sample(read_sample(args.sample), str(args.sample))
    summary = {"source": "sample", "sample": args.sample.name}
    n = write_jsonl(args.output, records)
    summary["movies"] = n
    write_json(args.summary, summary)
    record(rows=n)
    log.info("collect: wrote %s movies from %s to %s", n, params.source, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
