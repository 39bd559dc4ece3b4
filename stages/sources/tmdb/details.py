"""Details: one /movie/{id} per film, fetched concurrently and committed to the cache."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from tqdm import tqdm

from stages.sources.tmdb.cache import TmdbCache
from stages.sources.tmdb.client import AuthError, NotFound, TmdbClient, TmdbError
from stages.sources.tmdb.mapping import map_details

log = logging.getLogger(__name__)

APPEND = "credits,keywords,release_dates"

Fetched = tuple[int, str, dict[str, Any] | None]  # (id, "ok" or skip reason, record)


def details(client: TmdbClient, movie_id: int) -> dict[str, Any]:
    """The raw /movie/{id} answer with everything map_details reads, in one request."""
    return client.get_json(f"/movie/{movie_id}", {"append_to_response": APPEND}, "details")


def fetch_one(client: TmdbClient, movie_id: int, regions: Sequence[str]) -> Fetched:
    """Details of one film -> (id, "ok", record) or (id, skip reason, None).

    Only a 401 stops the run: any other failure costs this one film, not the collection.
    """
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
    todo: Sequence[int],
    concurrency: int,
    regions: Sequence[str],
    skipped: Counter[str],
) -> int:
    """Fetch `todo` with at most 2 x concurrency in flight; commit each film as it arrives.

    Bounded in flight so memory does not grow with the list; committed one by one so a
    killed run loses nothing it fetched. Returns the films fetched; skips go to `skipped`.
    """
    fetched = 0
    ids = iter(todo)
    inflight: set[Future[Fetched]] = set()
    bar = tqdm(total=len(todo), unit="movie", mininterval=1.0, disable=None, desc="details")
    try:
        while True:
            while len(inflight) < 2 * concurrency:
                movie_id = next(ids, None)
                if movie_id is None:
                    break
                inflight.add(pool.submit(fetch_one, client, movie_id, regions))
            if not inflight:
                return fetched
            done, inflight = wait(inflight, return_when=FIRST_COMPLETED)
            for fut in done:
                movie_id, status, rec = fut.result()
                if rec is not None:
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
