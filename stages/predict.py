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
import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from stages.api.scoring import (
    MOVIE_FIELDS,
    MOVIES,
    Movie,
    Problem,
    genre_problems,
    known_genres,
    prepare_model,
    score,
    to_frame,
    validate,
)
from stages.api.settings import Settings
from stages.lib.cli import UserError, run
from stages.lib.io import write_csv
from stages.lib.model_io import load_model
from stages.lib.pushgateway import record
from stages.lib.schema import FIELDS

log = logging.getLogger(__name__)

REQUIRED = ("title", "release_date", "budget")
LIST_INPUTS = frozenset(f for f in MOVIE_FIELDS if FIELDS[f][0] == "list")
SHOW_REJECTED = 10  # rejected rows also logged, up to this many
CHUNK = 1024  # JSONL rows validated per pydantic call


def _split_list(cell: str) -> Any:
    if cell.startswith("["):
        try:
            return json.loads(cell)
        except json.JSONDecodeError:
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
                yield n, f"has {len(header) + len(row[None])} cells, the header has {len(header)}"
                continue
            yield n, {
                k: (_split_list(v) if k in LIST_INPUTS else v) for k, v in row.items() if v != ""
            }


class JsonLine(str):
    """A JSONL line left for pydantic to parse and validate in one step (it is faster)."""


def read_jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with open(path, encoding="utf-8") as fh:
        n = 0
        for line in fh:
            if line.strip():
                n += 1
                yield n, JsonLine(line)


def read_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """(row number, raw record, JSON line or a reason string) per movie in a CSV/JSONL file."""
    if not path.is_file():
        raise UserError(f"{path}: input not found; pass an existing .csv or .jsonl file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv_rows(path)
    if suffix in (".jsonl", ".ndjson"):
        return read_jsonl_rows(path)
    raise UserError(f"{path}: unknown format '{suffix}'; use a .csv or .jsonl file")


def _validate_lines(lines: list[JsonLine]) -> list[Movie] | None:
    """A chunk of JSON lines in one pydantic call (a JSON array), or None if any line fails
    (or the joined text does not hold exactly one value per line): then they go one by one."""
    try:
        movies = MOVIES.validate_json("[" + ",".join(lines) + "]")
    except ValidationError:
        return None
    return movies if len(movies) == len(lines) else None


def _validated(
    rows: Iterator[tuple[int, Any]], genres: frozenset[str] | None
) -> Iterator[tuple[int, Movie | None, str]]:
    """(row, movie or None, why it was rejected) per row, in order. JSONL rows are validated
    CHUNK at a time (one pydantic call instead of one per row); a chunk with a bad row is
    redone row by row, so every rejected row keeps its own reasons."""
    pending: list[tuple[int, JsonLine]] = []

    def reason(problems: list[Problem]) -> str:
        return "; ".join(p.describe() for p in problems)

    def flush() -> Iterator[tuple[int, Movie | None, str]]:
        movies = _validate_lines([line for _, line in pending])
        if movies is None:
            for n, line in pending:
                movie, problems = validate(line, genres, json_text=True)
                yield n, movie, reason(problems)
        else:
            for (n, _), movie in zip(pending, movies, strict=True):
                problems = genre_problems(movie, genres)
                yield n, (None if problems else movie), reason(problems)
        pending.clear()

    for n, raw in rows:
        if isinstance(raw, JsonLine):
            pending.append((n, raw))
            if len(pending) >= CHUNK:
                yield from flush()
            continue
        if pending:
            yield from flush()
        if isinstance(raw, str):
            yield n, None, raw
        else:
            movie, problems = validate(raw, genres)
            yield n, movie, reason(problems)
    if pending:
        yield from flush()


def score_rows(
    model: dict[str, Any], rows: Iterator[tuple[int, Any]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate every row, score the valid ones in one call: (scores, rejected)."""
    genres = known_genres(model)
    good: list[Movie] = []
    good_rows: list[int] = []
    rejected: list[tuple[int, str]] = []
    for n, movie, reason in _validated(rows, genres):
        if movie is None:
            rejected.append((n, reason))
        else:
            good.append(movie)
            good_rows.append(n)
    scores = pd.DataFrame(
        {
            "row": pd.Series(good_rows, dtype="int64"),
            "title": pd.Series([m.title for m in good], dtype="object"),
            "release_date": pd.Series([m.release_date.isoformat() for m in good], dtype="object"),
        }
    )
    if good:
        s = score(model, to_frame(good))
        scores["success_probability"] = s.success_probability.round(6)
        scores["predicted_revenue"] = s.predicted_revenue.round(2)
        scores["success"] = s.success
    else:
        scores = scores.assign(success_probability=[], predicted_revenue=[], success=[])
    return scores, pd.DataFrame(rejected, columns=["row", "reason"])


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
    scores, rejected = score_rows(model, rows)
    write_csv(args.output, scores)
    write_csv(rejected_path, rejected)
    for row, reason in rejected.head(SHOW_REJECTED).itertuples(index=False):
        log.warning("predict: %s row %s rejected: %s", args.input, row, reason)
    record(rows=len(scores))
    log.info(
        "predict: scored %s movies to %s, rejected %s (listed in %s)",
        len(scores),
        args.output,
        len(rejected),
        rejected_path,
    )
    if scores.empty and not rejected.empty:
        raise UserError(f"{args.input}: every row was rejected; see {rejected_path} and fix them")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
