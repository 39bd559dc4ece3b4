"""DVC stage `collect`: gather movies from the configured source as normalized records (JSONL)."""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import logging
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from stages.lib.cli import UserError, run
from stages.lib.io import atomic_open, write_json
from stages.lib.params import load_section
from stages.lib.pushgateway import record
from stages.lib.schema import empty_record

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
# A numbered or "Part N" title is the only sequel signal the sample carries.
_SEQUEL_RE = re.compile(r"(?:\s|^)(?:[2-9]|II|III|IV|V|VI|Part\s+\w+)(?::|\s*$)", re.IGNORECASE)


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


def is_sequel_title(title: Any) -> bool:
    return isinstance(title, str) and bool(_SEQUEL_RE.search(title))


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--sample", type=Path, required=True, help="bundled sample (JSON, gzip)")
    parser.add_argument("--output", type=Path, required=True, help="normalized records (JSONL)")
    parser.add_argument("--summary", type=Path, required=True, help="collection summary (JSON)")
    args = parser.parse_args(argv)
    params = load_section(CollectParams, "collect", args.params)

    if params.source == "sample":
        records = map_sample(read_sample(args.sample), str(args.sample))
        summary: dict[str, Any] = {"source": "sample", "sample": args.sample.name}
    else:
        raise UserError(
            "params.yaml: collect.source 'tmdb' is not available in this version; use 'sample'"
        )
    n = write_jsonl(args.output, records)
    summary["movies"] = n
    write_json(args.summary, summary)
    record(rows=n)
    log.info("collect: wrote %s movies from %s to %s", n, params.source, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
