"""Command `predict`: score a file of new movies (CSV or JSONL) with the pipeline's model.

Every row is validated against the pre-release schema (stages/scoring/score.py). Valid rows
get `success_probability` and `predicted_revenue`; invalid rows are listed with the reason
in the rejected file instead of failing the whole file. `row` is the 1-based position of
the movie in the input (CSV header not counted). In CSV, list fields (genres, cast,
keywords, production_companies) are a JSON array or values separated by `|`; an empty
cell means unknown.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import csv
import gc
import io
import itertools
import logging
import multiprocessing
import os
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
from threadpoolctl import threadpool_limits

from stages.api.settings import Settings
from stages.core.cli import UserError, run
from stages.core.io import atomic_open
from stages.core.pushgateway import record
from stages.model.artifact import Model, load_model, require_model_file
from stages.scoring.score import (
    MOVIE_FIELDS,
    REQUIRED_FIELDS,
    Movie,
    Problem,
    known_genres,
    score,
    to_columns,
    validate_batch,
    validate_one,
)

log = logging.getLogger(__name__)

REQUIRED = tuple(f for f in MOVIE_FIELDS if f in REQUIRED_FIELDS)
LIST_INPUTS = frozenset(
    f for f in MOVIE_FIELDS if typing.get_origin(Movie.model_fields[f].annotation) is list
)
SHOW_REJECTED = 10  # rejected rows also logged, up to this many
CHUNK = 8192  # rows validated and scored together: bounded memory, per-call costs amortized
# Below this (~300,000 JSONL rows) --jobs defaults to 1: a worker's start-up (imports and
# model load, ~5 s of CPU here, on the core the main process scores on) is not repaid
# (measured on 2 cores: 100k rows 5.6-7.5 s with 1 process, 6.8-8.0 s with 2; 300k rows
# 9.4-11.1 s with either; 1M rows 26-28 s with 1, 15.5-19 s with 2).
SMALL_INPUT_BYTES = 50_000_000
SCORE_COLUMNS = (
    "row",
    "title",
    "release_date",
    "success_probability",
    "predicted_revenue",
    "success",
)
REJECTED_COLUMNS = ("row", "reason")


@dataclass(frozen=True)
class BadRow:
    """A row refused before validation (e.g. a CSV row with the wrong number of cells)."""

    reason: str


def _split_list(cell: str) -> Any:
    if cell.startswith("["):
        try:
            return orjson.loads(cell)
        except orjson.JSONDecodeError:
            return cell  # pydantic then reports "should be a valid list" for this field
    return [part.strip() for part in cell.split("|") if part.strip()]


def _csv_header(path: Path) -> list[str]:
    """The header, refused with one line if it has a column outside the schema or lacks a
    required one (checked before any row is read)."""
    with open(path, encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh), [])
    unknown = [c for c in header if c not in MOVIE_FIELDS]
    if unknown:
        raise UserError(
            f"{path}: column '{unknown[0]}' is not a pre-release field; remove it "
            f"(accepted: {', '.join(MOVIE_FIELDS)})"
        )
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise UserError(
            f"{path}: no column '{missing[0]}'; add it (required: {', '.join(REQUIRED)})"
        )
    return header


# A chunk as read: its movies' row numbers and, per movie, a JSONL line (bytes, parsed in
# the process validating it), a CSV record (dict) or a BadRow.
RawChunk = tuple[Sequence[int], list[Any]]


def _csv_chunks(path: Path, header: list[str], size: int) -> Iterator[RawChunk]:
    with open(path, encoding="utf-8", newline="") as fh:
        rows = enumerate(csv.DictReader(fh), start=1)
        while chunk := list(itertools.islice(rows, size)):
            items: list[Any] = []
            for _, row in chunk:
                if None in row:
                    cells = len(header) + len(row[None])
                    items.append(BadRow(f"has {cells} cells, the header has {len(header)}"))
                else:
                    items.append(
                        {
                            k: (_split_list(v) if k in LIST_INPUTS else v)
                            for k, v in row.items()
                            if v != ""
                        }
                    )
            yield [n for n, _ in chunk], items


def _jsonl_chunks(path: Path, size: int) -> Iterator[RawChunk]:
    """Lines as bytes (orjson checks their UTF-8), split at \\n as JSON Lines says; a blank
    line is not a movie and has no row number."""
    with open(path, "rb") as fh:
        lines = (line for line in fh if not line.isspace())
        first = 1
        while chunk := list(itertools.islice(lines, size)):
            yield range(first, first + len(chunk)), chunk
            first += len(chunk)


def read_chunks(path: Path, size: int = CHUNK) -> Iterator[RawChunk]:
    """The movies of a CSV or JSONL file, `size` at a time (a missing file, an unknown format
    or a bad CSV header fails here, before any row is read)."""
    if not path.is_file():
        raise UserError(f"{path}: input not found; pass an existing .csv or .jsonl file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_chunks(path, _csv_header(path), size)
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl_chunks(path, size)
    raise UserError(f"{path}: unknown format '{suffix}'; use a .csv or .jsonl file")


def _reason(problems: list[Problem]) -> str:
    return "; ".join(p.describe() for p in problems)


@dataclass(frozen=True)
class Chunk:
    """A validated chunk: the accepted movies as columns, with their input row numbers, and
    the rejected rows' (row, reason), in input order."""

    rows: np.ndarray
    columns: dict[str, np.ndarray]
    rejected: list[tuple[int, str]]


def _parse(
    genres: frozenset[str] | None, chunk: RawChunk
) -> tuple[list[int], list[Any], list[tuple[int, str]]]:
    """(positions, records, rejected): the chunk's records to validate (JSONL lines parsed)
    with their positions in the chunk, and the rows refused already."""
    numbers, items = chunk
    if all(type(item) is bytes for item in items):
        try:
            return list(range(len(items))), list(map(orjson.loads, items)), []
        except orjson.JSONDecodeError:
            pass  # some line is not JSON: one at a time, to tell which
    positions: list[int] = []
    records: list[Any] = []
    rejected: list[tuple[int, str]] = []
    for i, item in enumerate(items):
        if isinstance(item, BadRow):
            rejected.append((numbers[i], item.reason))
            continue
        if isinstance(item, bytes):
            try:
                item = orjson.loads(item)
            except orjson.JSONDecodeError:  # also integers beyond 64 bits: pydantic decides
                movie, problems = validate_one(item, genres, json_text=True)
                if movie is None:
                    rejected.append((numbers[i], _reason(problems)))
                    continue
                item = movie.model_dump()
        positions.append(i)
        records.append(item)
    return positions, records, rejected


def validate_chunk(genres: frozenset[str] | None, chunk: RawChunk) -> Chunk:
    positions, records, rejected = _parse(genres, chunk)
    numbers = np.asarray(chunk[0], dtype=np.int64)[positions]  # of the records
    valid = validate_batch(records, genres)
    rejected += [(int(numbers[i]), _reason(p)) for i, p in valid.refused.items()]
    return Chunk(
        rows=numbers[valid.accepted],
        columns=to_columns(valid.columns),
        rejected=sorted(rejected),
    )


def score_chunk(model: Model, chunk: Chunk) -> list[list[Any]]:
    """The scores of a validated chunk: the SCORE_COLUMNS, one value per accepted movie."""
    if len(chunk.rows) == 0:
        return [[] for _ in SCORE_COLUMNS]
    s = score(model, chunk.columns)
    return [
        chunk.rows.tolist(),
        chunk.columns["title"].tolist(),
        np.datetime_as_string(chunk.columns["release_date"], unit="D").tolist(),
        s.success_probability.round(6).tolist(),
        s.predicted_revenue.round(2).tolist(),
        s.success.tolist(),
    ]


@dataclass(frozen=True)
class Scored:
    """One chunk's output: CSV lines (no header) for both files, and what to report."""

    scores_csv: str
    rejected_csv: str
    scored: int
    rejected: int
    first_rejected: list[tuple[int, str]]  # up to SHOW_REJECTED of them, to log


def _csv(rows: Iterable[Sequence[Any]]) -> str:
    """CSV lines, no header: floats as repr, quoting as needed (as pandas' to_csv writes)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def process_chunk(model: Model, genres: frozenset[str] | None, raw: RawChunk) -> Scored:
    chunk = validate_chunk(genres, raw)
    scores = score_chunk(model, chunk)
    return Scored(
        _csv(zip(*scores, strict=True)),
        _csv(chunk.rejected),
        len(chunk.rows),
        len(chunk.rejected),
        chunk.rejected[:SHOW_REJECTED],
    )


_worker: dict[str, Any] = {}  # this worker process's model and genres, set by _start_worker


def _start_worker(models: Any) -> None:
    """A worker imports what scoring needs while the main process loads the model, then takes
    the model from `models` (a queue) as the main process pickled it: loaded and checked
    there (skops with the allow-list, the fast path's bitwise verification), never read from
    a file here. Its trees run on one OpenMP thread: the processes already use every core."""
    threadpool_limits(1, user_api="openmp")
    model = models.get()
    if model is None:  # the main process could not load the model, and says why
        return
    _worker.update(model=model, genres=known_genres(model))
    gc.freeze()


def _process_in_worker(raw: RawChunk) -> Scored:
    return process_chunk(_worker["model"], _worker["genres"], raw)


def _in_order(
    chunks: Iterator[RawChunk],
    here: Callable[[RawChunk], Scored],
    pool: ProcessPoolExecutor,
    workers: int,
    started: Future[Any],
) -> Iterator[Scored]:
    """Results in input order. A chunk goes to the pool while it has fewer than two per
    worker in flight (once a worker has `started`); otherwise this process scores it, so
    neither side idles: this process works while the workers start up, and the faster side
    takes more chunks. At most 4 x (workers + 1) results wait for an earlier chunk."""
    pending: collections.deque[Future[Scored] | Scored] = collections.deque()
    for chunk in chunks:
        busy = sum(isinstance(p, Future) and not p.done() for p in pending)
        if started.done() and busy < 2 * workers:
            pending.append(pool.submit(_process_in_worker, chunk))
        else:
            pending.append(here(chunk))
        while pending and not (isinstance(pending[0], Future) and not pending[0].done()):
            yield _result(pending.popleft())
        if len(pending) >= 4 * (workers + 1):
            yield _result(pending.popleft())
    for item in pending:
        yield _result(item)


def _result(item: Future[Scored] | Scored) -> Scored:
    return item.result() if isinstance(item, Future) else item


@dataclass(frozen=True)
class Written:
    scored: int
    rejected: int
    first_rejected: list[tuple[int, str]]  # up to SHOW_REJECTED of them, to log


def write_scores(
    model_path: Path,
    chunks: Iterator[RawChunk],
    out: IO[str],
    rejected: IO[str],
    jobs: int = 1,
) -> Written:
    """Score `chunks` into the scores and rejected CSV files, in this process and `jobs - 1`
    worker processes, each scoring whole chunks (processes: parsing, validation and the
    features are Python, which holds one core per process)."""
    out.write(",".join(SCORE_COLUMNS) + "\n")
    rejected.write(",".join(REJECTED_COLUMNS) + "\n")
    with contextlib.ExitStack() as stack:
        if jobs > 1:  # started first: the workers import while this process loads the model
            spawn = multiprocessing.get_context("spawn")
            models = spawn.Queue()
            stack.callback(models.close)
            pool = stack.enter_context(
                ProcessPoolExecutor(
                    jobs - 1, mp_context=spawn, initializer=_start_worker, initargs=(models,)
                )
            )
            warmups = [pool.submit(int) for _ in range(jobs - 1)]  # spawned on demand
            started = warmups[0]  # taken first: done once a worker is ready
            # as the workers: OpenMP (sklearn's pipelines, without the fast path) would
            # oversubscribe the cores the processes share
            stack.enter_context(threadpool_limits(1, user_api="openmp"))
        loaded = None
        try:
            loaded = model = load_model(model_path)
        finally:  # each worker gets the model (pickled by the queue), or None if it failed
            for _ in range(jobs - 1):
                models.put(loaded)
        gc.freeze()  # the model lives to the end: the collector need not walk it again
        here = partial(process_chunk, model, known_genres(model))
        results = (
            map(here, chunks) if jobs == 1 else _in_order(chunks, here, pool, jobs - 1, started)
        )
        scored, refused, shown = 0, 0, []
        for result in results:
            out.write(result.scores_csv)
            rejected.write(result.rejected_csv)
            scored += result.scored
            refused += result.rejected
            shown += result.first_rejected[: SHOW_REJECTED - len(shown)]
    return Written(scored, refused, shown)


def default_jobs(path: Path) -> int:
    """One process for small files, else one per available core."""
    if path.stat().st_size < SMALL_INPUT_BYTES:
        return 1
    return max(1, len(os.sched_getaffinity(0)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", type=Path, required=True, help="movies (.csv or .jsonl)")
    parser.add_argument("--output", type=Path, required=True, help="scores (CSV)")
    parser.add_argument(
        "--rejected", type=Path, help="rejected rows with reasons (default: OUTPUT.rejected.csv)"
    )
    parser.add_argument(
        "--model", type=Path, help="default: MODEL_PATH, else the train output in dvc.lock"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        help="processes scoring chunks (default: 1 for small files, else one per core)",
    )
    args = parser.parse_args(argv)
    model_path = require_model_file(args.model or Settings.from_env(os.environ).model_path)
    rejected_path = args.rejected or args.output.with_suffix(".rejected.csv")
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: use 1 or more processes")

    chunks = read_chunks(args.input)  # a missing file, unknown format or bad header fail here
    jobs = args.jobs or default_jobs(args.input)
    with atomic_open(args.output) as out, atomic_open(rejected_path) as rej:
        written = write_scores(model_path, chunks, out, rej, jobs=jobs)
    for row, reason in written.first_rejected:
        log.warning("predict: %s row %s rejected: %s", args.input, row, reason)
    record(rows=written.scored)
    log.info(
        "predict: scored %s movies to %s, rejected %s (listed in %s)",
        written.scored,
        args.output,
        written.rejected,
        rejected_path,
    )
    if written.scored == 0 and written.rejected > 0:
        raise UserError(f"{args.input}: every row was rejected; see {rejected_path} and fix them")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
