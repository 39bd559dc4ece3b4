"""Batch scoring of a file of movies (CSV or JSONL): reading, chunking, validating, scoring in
worker processes, and the two CSV outputs (scores, rejected rows with their reasons).

Rows are validated with validate_batch and scored with score (stages/scoring/score.py), as
in the service. `row` is the 1-based position of the movie in the input (CSV header not
counted). In CSV, list fields (genres, cast, production_companies) are a JSON
array or values separated by `|`; an empty cell means unknown. The command around this is
stages/predict.py.
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import csv
import gc
import io
import itertools
import multiprocessing
import os
import threading
import time
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import pydantic_core
from threadpoolctl import threadpool_limits

from stages.core.cli import UserError
from stages.model.artifact import Model, load_model
from stages.scoring.lifeline import set_parent_death_signal
from stages.scoring.score import (
    MOVIE_FIELDS,
    REQUIRED_FIELDS,
    Movie,
    Problem,
    known_genres,
    score,
    to_columns,
    validate_batch,
)

REQUIRED = tuple(f for f in MOVIE_FIELDS if f in REQUIRED_FIELDS)
LIST_INPUTS = frozenset(
    f for f in MOVIE_FIELDS if typing.get_origin(Movie.model_fields[f].annotation) is list
)
SHOW_REJECTED = 10  # rejected rows also logged, up to this many
CHUNK = 8192  # rows validated and scored together: bounded memory, per-call costs amortized
# Inputs smaller than this are scored in one process by default: a worker's start-up
# (imports and the model, on a core this process also scores on) is not repaid there
# (`python -m bench serve --only batch` measures both sides).
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
    """A CSV list cell: a JSON array, else values separated by `|`."""
    if cell.startswith("["):
        try:
            return orjson.loads(cell)
        except orjson.JSONDecodeError:
            return cell  # pydantic then reports "should be a valid list" for this field
    return [part.strip() for part in cell.split("|") if part.strip()]


CSV_FIELD_LIMIT = 1024 * 1024  # characters in one CSV cell; a longer one rejects its row
ENCODING = "utf-8-sig"  # UTF-8, with or without the BOM Excel's "CSV UTF-8" writes
BOM = b"\xef\xbb\xbf"
_TRUE = frozenset({"true", "t", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "off", "0"})


def _scalar_type(name: str) -> Any:
    """A Movie field's value type without None (int for `int | None`)."""
    annotation = Movie.model_fields[name].annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return (
        args[0]
        if typing.get_origin(annotation) in (typing.Union, types.UnionType)
        else (annotation)
    )


def _cell_parser(kind: Any) -> Callable[[str], Any] | None:
    """How a CSV cell (always text) becomes the JSON value Movie's strict fields expect;
    a cell that does not parse stays text, and Movie words the reason."""
    if kind is bool:
        return lambda v: True if v.lower() in _TRUE else False if v.lower() in _FALSE else v
    if kind in (int, float):

        def number(v: str) -> Any:
            try:
                return kind(v) if len(v) <= 400 else v
            except ValueError:
                return v

        return number
    return None


CELL_PARSERS = {
    f: p for f in MOVIE_FIELDS if f not in LIST_INPUTS and (p := _cell_parser(_scalar_type(f)))
}


def not_text(path: Path) -> str | None:
    """Why `path` is not UTF-8 text (the byte offset and line of the first NUL byte or invalid
    UTF-8 sequence), or None."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line = 0, 1
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            nul = block.find(b"\x00")
            try:
                decoder.decode(block if nul < 0 else block[:nul])
            except UnicodeDecodeError as exc:
                where = offset + exc.start
                line += block.count(b"\n", 0, exc.start)
                return f"byte {where} (line {line}) is not UTF-8 ({exc.reason})"
            if nul >= 0:
                line += block.count(b"\n", 0, nul)
                return f"byte {offset + nul} (line {line}) is a NUL byte: a binary file"
            offset += len(block)
            line += block.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        return f"byte {offset + exc.start} (line {line}) ends inside a UTF-8 character"
    return None


def _refuse_binary(path: Path) -> typing.NoReturn:
    reason = not_text(path) or "not UTF-8 text"
    raise UserError(f"{path}: not a UTF-8 text file: {reason}; save it as UTF-8 (CSV UTF-8)")


@contextlib.contextmanager
def _text_errors(path: Path) -> Iterator[None]:
    """A decode error or NUL byte while reading `path` as one line naming the byte offset."""
    try:
        yield
    except UnicodeDecodeError:
        _refuse_binary(path)
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc}); check the file") from None


def _csv_header(path: Path) -> list[str]:
    """The header, refused with one line if it has a column outside the schema or lacks a
    required one (checked before any row is read)."""
    with _text_errors(path), open(path, encoding=ENCODING, newline="") as fh:
        try:
            header = next(csv.reader(fh, strict=True), [])
        except csv.Error as exc:
            raise UserError(f"{path}: the header line is not CSV ({exc}); fix it") from None
    if any("\x00" in c for c in header):
        _refuse_binary(path)
    unknown = [c for c in header if c not in MOVIE_FIELDS]
    if unknown:
        raise UserError(
            f"{path}: column '{unknown[0][:100]}' is not a pre-release field; remove it "
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


def _csv_rows(path: Path, header: list[str]) -> Iterator[Any]:
    """The records after the header: a dict per row, or a BadRow for a row the CSV reader
    refuses (bad quoting, a cell over CSV_FIELD_LIMIT) or with the wrong number of cells."""
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    with _text_errors(path), open(path, encoding=ENCODING, newline="") as fh:
        reader = csv.reader(fh, strict=True)
        next(reader, None)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                if "NUL" in str(exc):
                    _refuse_binary(path)
                yield BadRow(f"not a valid CSV row ({exc}); fix its quoting")
                continue
            if not cells:
                continue  # a blank line is not a movie (as csv.DictReader skips it)
            if any("\x00" in c for c in cells):
                _refuse_binary(path)
            if len(cells) != len(header):
                yield BadRow(f"has {len(cells)} cells, the header has {len(header)}")
                continue
            yield {
                k: (
                    _split_list(v)
                    if k in LIST_INPUTS
                    else (CELL_PARSERS[k](v) if k in CELL_PARSERS else v)
                )
                for k, v in zip(header, cells, strict=True)
                if v != ""
            }


def _csv_chunks(path: Path, header: list[str], size: int) -> Iterator[RawChunk]:
    rows = enumerate(_csv_rows(path, header), start=1)
    while chunk := list(itertools.islice(rows, size)):
        yield [n for n, _ in chunk], [item for _, item in chunk]


def _jsonl_chunks(path: Path, size: int) -> Iterator[RawChunk]:
    """Lines as bytes (orjson checks their UTF-8: a line that is not is one rejected row),
    split at \\n as JSON Lines says; a blank line is not a movie and has no row number. A
    binary file (a NUL byte) is refused as a whole, with the byte offset."""
    with _text_errors(path), open(path, "rb") as fh:
        if fh.read(len(BOM)) != BOM:
            fh.seek(0)
        lines = (line for line in fh if not line.isspace())
        first = 1
        while chunk := list(itertools.islice(lines, size)):
            if any(b"\x00" in line for line in chunk):
                _refuse_binary(path)
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


def _parse(chunk: RawChunk) -> tuple[list[int], list[Any], list[tuple[int, str]]]:
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
            except orjson.JSONDecodeError:
                # pydantic's parser decides (and words the reason), as it would for a request:
                # it also reads what orjson refuses, such as NaN or numbers beyond a double
                try:
                    item = pydantic_core.from_json(item)
                except ValueError as exc:
                    problem = Problem((), f"Invalid JSON: {exc}", "json_invalid")
                    rejected.append((numbers[i], _reason([problem])))
                    continue
        positions.append(i)
        records.append(item)
    return positions, records, rejected


def validate_chunk(genres: frozenset[str] | None, chunk: RawChunk) -> Chunk:
    """A chunk as read, parsed and validated: what score_chunk scores."""
    positions, records, rejected = _parse(chunk)
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
    proba, revenue, success = score(model, chunk.columns).rounded()
    return [
        chunk.rows.tolist(),
        chunk.columns["title"].tolist(),
        np.datetime_as_string(chunk.columns["release_date"], unit="D").tolist(),
        proba,
        revenue,
        success,
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
    """A chunk as read -> its lines of both output files (what a worker sends back)."""
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


def _one_thread() -> None:
    """OpenMP on one thread per process: the processes already use every core, and the
    heads' many small per-tree parallel regions are slower on two threads than on one."""
    threadpool_limits(1, user_api="openmp")


def die_with_parent(parent: int) -> None:
    """End this worker when the process that started it ends, even by SIGKILL: the kernel's
    parent-death signal on Linux, and a thread watching the parent's pid elsewhere (or should
    the parent already be gone)."""
    set_parent_death_signal()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _start_worker(models: Any, parent: int | None = None) -> None:
    """A worker imports what scoring needs while the main process loads the model, then takes
    the model from `models` (a queue) as the main process pickled it: loaded there with the
    skops allow-list, never read from a file here."""
    die_with_parent(os.getppid() if parent is None else parent)
    _one_thread()
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
    """What write_scores wrote: counts, and the first rejected rows to log."""

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
    features are Python, which holds one core per process). The model is loaded here, once,
    while the workers start."""
    out.write(",".join(SCORE_COLUMNS) + "\n")
    rejected.write(",".join(REJECTED_COLUMNS) + "\n")
    with contextlib.ExitStack() as stack:
        stack.enter_context(threadpool_limits(1, user_api="openmp"))  # see _one_thread
        if jobs > 1:  # started first: the workers import while this process loads the model
            spawn = multiprocessing.get_context("spawn")
            models = spawn.Queue()
            stack.callback(models.close)
            pool = stack.enter_context(
                ProcessPoolExecutor(
                    jobs - 1,
                    mp_context=spawn,
                    initializer=_start_worker,
                    initargs=(models, os.getpid()),
                )
            )
            warmups = [pool.submit(int) for _ in range(jobs - 1)]  # spawned on demand
            started = warmups[0]  # taken first: done once a worker is ready
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
        scored, refused = 0, 0
        shown: list[tuple[int, str]] = []
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
