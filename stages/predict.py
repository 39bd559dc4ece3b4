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
import csv
import gc
import itertools
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import pandas as pd

from stages.api.scoring import (
    MOVIE_FIELDS,
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
from stages.lib.model_io import load_model
from stages.lib.pushgateway import record
from stages.lib.schema import FIELDS

log = logging.getLogger(__name__)

REQUIRED = ("title", "release_date", "budget")
LIST_INPUTS = frozenset(f for f in MOVIE_FIELDS if FIELDS[f][0] == "list")
SHOW_REJECTED = 10  # rejected rows also logged, up to this many
CHUNK = 8192  # rows validated and scored together: bounded memory, per-call costs amortized
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


class JsonLine(str):
    """A JSONL line that is not valid JSON: pydantic parses it again to say why."""


def _split_list(cell: str) -> Any:
    if cell.startswith("["):
        try:
            return orjson.loads(cell)
        except orjson.JSONDecodeError:
            return cell  # pydantic then reports "should be a valid list" for this field
    return [part.strip() for part in cell.split("|") if part.strip()]


def read_csv_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        unknown = [c for c in header if c not in MOVIE_FIELDS]
        if unknown:
            raise UserError(
                f"{path}: column '{unknown[0]}' is not a pre-release field; remove it "
                f"(accepted: {', '.join(MOVIE_FIELDS)})"
            )
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise UserError(
                f"{path}: no column '{missing[0]}'; add it (required: title, release_date, budget)"
            )
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
                try:
                    yield n, orjson.loads(line)
                except orjson.JSONDecodeError:  # also integers beyond 64 bits: pydantic decides
                    yield n, JsonLine(line)


def read_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """(row number, parsed record, JsonLine or BadRow) per movie in a CSV/JSONL file."""
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
        if isinstance(raw, JsonLine):
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


def _append(fh: IO[str], df: pd.DataFrame) -> None:
    df.to_csv(fh, index=False, header=False, lineterminator="\n")


@dataclass(frozen=True)
class Written:
    scored: int
    rejected: int
    first_rejected: pd.DataFrame  # up to SHOW_REJECTED of them, to log


def write_scores(
    model: dict[str, Any],
    rows: Iterator[tuple[int, Any]],
    out: IO[str],
    rejected: IO[str],
    chunk_size: int = CHUNK,
) -> Written:
    """Score `rows` `chunk_size` at a time into the scores and rejected CSV files.

    (A worker thread scoring chunk k while the main thread validated chunk k+1 was tried and
    measured no faster: sklearn's tree predictor takes the GIL back after every tree.)"""
    genres = known_genres(model)
    out.write(",".join(SCORE_COLUMNS) + "\n")
    rejected.write(",".join(REJECTED_COLUMNS) + "\n")
    scored, refused, shown = 0, 0, []
    for chunk in map(partial(validate_chunk, genres), _chunks(rows, chunk_size)):
        scores = score_chunk(model, chunk)
        _append(out, scores)
        _append(rejected, chunk.rejected)
        scored += len(scores)
        refused += len(chunk.rejected)
        if len(shown) < SHOW_REJECTED:
            shown.append(chunk.rejected.head(SHOW_REJECTED))
    first = pd.concat(shown) if shown else pd.DataFrame(columns=list(REJECTED_COLUMNS))
    return Written(scored, refused, first.head(SHOW_REJECTED))


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
    args = parser.parse_args(argv)
    model_path = args.model or Settings.from_env(os.environ).model_path
    rejected_path = args.rejected or args.output.with_suffix(".rejected.csv")

    rows = read_rows(args.input)  # a missing file or unknown format fails before the load
    model = prepare_model(load_model(model_path))
    gc.freeze()  # the model lives to the end: the collector need not walk it for every chunk
    with atomic_open(args.output) as out, atomic_open(rejected_path) as rej:
        written = write_scores(model, rows, out, rej)
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
