"""Command `predict`: score a file of new movies (CSV or JSONL) with the pipeline's model.

Every row is validated against the pre-release schema (stages/api/scoring.py). Valid rows
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
import itertools
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import pandas as pd
from threadpoolctl import threadpool_limits

from stages.api.scoring import (
    MOVIE_FIELDS,
    REQUIRED_FIELDS,
    Problem,
    known_genres,
    prepare_model,
    score,
    to_columns,
    validate,
    validate_batch,
)
from stages.api.settings import Settings
from stages.lib.cli import UserError, run
from stages.lib.io import atomic_open
from stages.lib.model_io import load_model, require_model_file
from stages.lib.pushgateway import record
from stages.lib.schema import FIELDS

log = logging.getLogger(__name__)

REQUIRED = tuple(f for f in MOVIE_FIELDS if f in REQUIRED_FIELDS)
LIST_INPUTS = frozenset(f for f in MOVIE_FIELDS if FIELDS[f][0] == "list")
SHOW_REJECTED = 10  # rejected rows also logged, up to this many
CHUNK = 8192  # rows validated and scored together: bounded memory, per-call costs amortized
# Below this (~300,000 JSONL rows) --jobs defaults to 1: a worker's start-up (imports and
# model load, ~5 s here) is not repaid (measured: 100k rows 9.0 s with 1 process, 11.9 s
# with 2; 500k rows 29.2 s with 1, 22.2 s with 2, on 2 cores).
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


def read_csv_rows(path: Path) -> Iterator[tuple[int, Any]]:
    header = _csv_header(path)
    return _csv_rows(path, header)


def _csv_rows(path: Path, header: list[str]) -> Iterator[tuple[int, Any]]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        for n, row in enumerate(reader, start=1):
            if None in row:
                cells = len(header) + len(row[None])
                yield n, BadRow(f"has {cells} cells, the header has {len(header)}")
                continue
            yield n, {
                k: (_split_list(v) if k in LIST_INPUTS else v) for k, v in row.items() if v != ""
            }


def read_jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with open(path, encoding="utf-8") as fh:
        n = 0
        for line in fh:
            if line.strip():
                n += 1
                yield n, line  # parsed where it is validated (in the process scoring it)


def read_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """(row number, parsed CSV record, JSONL line (str) or BadRow) per movie in a file."""
    if not path.is_file():
        raise UserError(f"{path}: input not found; pass an existing .csv or .jsonl file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv_rows(path)
    if suffix in (".jsonl", ".ndjson"):
        return read_jsonl_rows(path)
    raise UserError(f"{path}: unknown format '{suffix}'; use a .csv or .jsonl file")


def _reason(problems: list[Problem]) -> str:
    return "; ".join(p.describe() for p in problems)


@dataclass(frozen=True)
class Chunk:
    """A validated chunk: the accepted movies as columns, with their input row numbers."""

    rows: np.ndarray
    columns: dict[str, np.ndarray]
    rejected: pd.DataFrame


def validate_chunk(genres: frozenset[str] | None, rows: Sequence[tuple[int, Any]]) -> Chunk:
    rejected: list[tuple[int, str]] = []
    numbers: list[int] = []
    records: list[Any] = []
    for n, raw in rows:
        if isinstance(raw, BadRow):
            rejected.append((n, raw.reason))
            continue
        if isinstance(raw, str):  # a JSONL line
            try:
                raw = orjson.loads(raw)
            except orjson.JSONDecodeError:  # also integers beyond 64 bits: pydantic decides
                movie, problems = validate(raw, genres, json_text=True)
                if movie is None:
                    rejected.append((n, _reason(problems)))
                    continue
                raw = movie.model_dump()
        numbers.append(n)
        records.append(raw)
    valid = validate_batch(records, genres)
    rejected += [(numbers[i], _reason(problems)) for i, problems in valid.refused.items()]
    return Chunk(
        rows=np.array([numbers[i] for i in valid.accepted], dtype="int64"),
        columns=to_columns(valid.columns),
        rejected=pd.DataFrame(sorted(rejected), columns=list(REJECTED_COLUMNS)),
    )


def score_chunk(model: dict[str, Any], chunk: Chunk) -> pd.DataFrame:
    """The scores of a validated chunk, one row per accepted movie (SCORE_COLUMNS)."""
    out = pd.DataFrame(
        {
            "row": chunk.rows,
            "title": chunk.columns["title"],
            "release_date": np.datetime_as_string(chunk.columns["release_date"], unit="D"),
        }
    )
    if len(chunk.rows) == 0:
        return out.assign(success_probability=[], predicted_revenue=[], success=[])
    s = score(model, chunk.columns)
    return out.assign(
        success_probability=s.success_probability.round(6),
        predicted_revenue=s.predicted_revenue.round(2),
        success=s.success,
    )


def _chunks(rows: Iterator[tuple[int, Any]], size: int) -> Iterator[list[tuple[int, Any]]]:
    while chunk := list(itertools.islice(rows, size)):
        yield chunk


@dataclass(frozen=True)
class Scored:
    """One chunk's output: CSV lines (no header) for both files, and what to report."""

    scores_csv: str
    rejected_csv: str
    scored: int
    rejected: int
    first_rejected: pd.DataFrame  # up to SHOW_REJECTED of them, to log


def _csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, header=False, lineterminator="\n")


def process_chunk(
    model: dict[str, Any], genres: frozenset[str] | None, rows: Sequence[tuple[int, Any]]
) -> Scored:
    chunk = validate_chunk(genres, rows)
    scores = score_chunk(model, chunk)
    return Scored(
        _csv(scores),
        _csv(chunk.rejected),
        len(scores),
        len(chunk.rejected),
        chunk.rejected.head(SHOW_REJECTED),
    )


_worker: dict[str, Any] = {}  # this worker process's model, set by _start_worker


def _start_worker(model_path: str) -> None:
    """Each worker loads and checks the model itself (nothing unsafe crosses processes) and
    runs its trees on one OpenMP thread: the workers already use every core."""
    threadpool_limits(1, user_api="openmp")
    try:
        model = prepare_model(load_model(model_path))
    except UserError as exc:  # raised again by each task: a failing initializer breaks
        _worker["error"] = exc  # the pool with a traceback instead of this one line
        return
    _worker.update(model=model, genres=known_genres(model))
    gc.freeze()


def _process_in_worker(rows: Sequence[tuple[int, Any]]) -> Scored:
    if "error" in _worker:
        raise _worker["error"]
    return process_chunk(_worker["model"], _worker["genres"], rows)


def _in_order(
    chunks: Iterator[list[tuple[int, Any]]],
    here: Callable[[list[tuple[int, Any]]], Scored],
    pool: ProcessPoolExecutor,
    jobs: int,
) -> Iterator[Scored]:
    """Results in input order: every `jobs`-th chunk scored `here`, the others by the pool
    meanwhile, with at most 2 x jobs chunks in flight (flat memory)."""
    pending: collections.deque[Future[Scored] | list[tuple[int, Any]]] = collections.deque()
    for i, chunk in enumerate(chunks):
        pending.append(chunk if i % jobs == 0 else pool.submit(_process_in_worker, chunk))
        if len(pending) >= 2 * jobs:
            item = pending.popleft()
            yield item.result() if isinstance(item, Future) else here(item)
    for item in pending:
        yield item.result() if isinstance(item, Future) else here(item)


@dataclass(frozen=True)
class Written:
    scored: int
    rejected: int
    first_rejected: pd.DataFrame  # up to SHOW_REJECTED of them, to log


def write_scores(
    model_path: Path,
    rows: Iterator[tuple[int, Any]],
    out: IO[str],
    rejected: IO[str],
    jobs: int = 1,
    chunk_size: int = CHUNK,
) -> Written:
    """Score `rows` `chunk_size` at a time into the scores and rejected CSV files, in this
    process and `jobs - 1` worker processes, each scoring whole chunks.

    Why processes: parsing and validation are Python (one core per process), and sklearn's
    tree predictor retakes the GIL after every tree, so a worker thread measured no faster.
    """
    out.write(",".join(SCORE_COLUMNS) + "\n")
    rejected.write(",".join(REJECTED_COLUMNS) + "\n")
    chunks = _chunks(rows, chunk_size)
    with contextlib.ExitStack() as stack:
        if jobs > 1:  # started first: the workers load their model while this process does
            pool = stack.enter_context(
                ProcessPoolExecutor(
                    jobs - 1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                    initargs=(str(model_path),),
                )
            )
            for _ in range(jobs - 1):
                pool.submit(int)  # the pool spawns its processes on demand
            stack.enter_context(threadpool_limits(1, user_api="openmp"))  # as the workers
        model = prepare_model(load_model(model_path))
        gc.freeze()  # the model lives to the end: the collector need not walk it again
        here = partial(process_chunk, model, known_genres(model))
        results = map(here, chunks) if jobs == 1 else _in_order(chunks, here, pool, jobs)
        scored, refused, shown = 0, 0, []
        for result in results:
            out.write(result.scores_csv)
            rejected.write(result.rejected_csv)
            scored += result.scored
            refused += result.rejected
            if len(shown) < SHOW_REJECTED:
                shown.append(result.first_rejected)
    first = pd.concat(shown) if shown else pd.DataFrame(columns=list(REJECTED_COLUMNS))
    return Written(scored, refused, first.head(SHOW_REJECTED))


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

    rows = read_rows(args.input)  # a missing file, unknown format or bad header fails here
    jobs = args.jobs or default_jobs(args.input)
    with atomic_open(args.output) as out, atomic_open(rejected_path) as rej:
        written = write_scores(model_path, rows, out, rej, jobs=jobs)
    for row, reason in written.first_rejected.itertuples(index=False):
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
