"""The bundled sample (vega-datasets films, gzip JSON): read it and map rows to records.

It is the offline source, so `dvc repro` works without credentials. A damaged file is a
user error that names the file, the record and the fix.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stages.core.cli import UserError, read_input
from stages.core.schema import empty_record, is_sequel_title

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
    """Records for every row, ids in file order; a bad row stops it before anything is written."""
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
    """The sample's rows, gzip or plain JSON; a damaged file is a UserError naming the fix."""
    raw = read_input(path, "the sample file", "sample file not found; restore it with git checkout")
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
