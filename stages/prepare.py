"""DVC stage `prepare`: validate and clean records, derive the label, split chronologically.

The snapshot date has one source of truth, `collect.release_date_lte`: a record dated after it
is dropped, never shifted. Films released fewer than `prepare.maturity_days` before it have no
label yet (their revenue is still growing): they are counted as immature and left out. The
test period is the last `prepare.test_years` calendar years of mature films; train is every
mature film before it. Repairs that are facts about one source apply to that source only.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from pydantic import Field, ValidationError

from stages.core.cli import UserError, run
from stages.core.io import staged_outputs, write_json, write_parquet
from stages.core.params import load_key, load_section
from stages.core.pushgateway import record
from stages.core.schema import FIELDS, PRE_RELEASE, MovieRecord, missing_fields
from stages.sources.params import CollectParams

log = logging.getLogger(__name__)

MAX_BUDGET = 2_000_000_000  # no film has cost more; a larger figure is a data error
MAX_RUNTIME = 600
# The bundled sample stores two-digit years, read as 20xx; none of its films is later than this.
SAMPLE_LAST_YEAR = 2011
# What `passed` in validation.json checks besides the dates (see checks()).
MIN_SPLIT_ROWS = 100
BASE_RATE_RANGE = (0.05, 0.95)
LISTED_IMMATURE = 20  # immature films named in the report (all are counted)


@dataclass(frozen=True)
class PrepareParams:
    """The `prepare` section; each range is declared here and checked at load."""

    roi_threshold: Annotated[float, Field(gt=0)]  # success = revenue >= roi_threshold * budget
    min_budget: Annotated[int, Field(ge=0)]  # smaller budgets are typos or not comparable
    min_revenue: Annotated[int, Field(ge=0)]  # smaller revenues are entry errors (a few dollars)
    # films released less than this before the snapshot get no label
    maturity_days: Annotated[int, Field(ge=0)]
    # last calendar years of mature films held out as the test period
    test_years: Annotated[int, Field(ge=1)]


@dataclass(frozen=True)
class Prepared:
    train: pd.DataFrame
    test: pd.DataFrame
    report: dict[str, Any]


def split_dates(snapshot: dt.date, params: PrepareParams) -> tuple[dt.date, dt.date]:
    """(mature_until, test_start): films released on or before `mature_until` have a label;
    the test period starts on 1 January, `test_years` whole years before the first year
    whose films are not all mature."""
    mature_until = snapshot - dt.timedelta(days=params.maturity_days)
    first_open_year = (mature_until + dt.timedelta(days=1)).year
    return mature_until, dt.date(first_open_year - params.test_years, 1, 1)


def read_records(path: Path) -> list[dict[str, Any]]:
    """Read JSONL records; a structural problem (bad UTF-8 or JSON, missing field) stops the
    stage with the line and byte offset."""
    records = []
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a JSONL file; pass the file")
    if not path.is_file():
        raise UserError(f"{path}: not found; run the collect stage first (dvc repro)")
    offset = 0
    try:
        fh = open(path, "rb")  # noqa: SIM115 (closed by the with below)
    except PermissionError:
        raise UserError(f"{path}: permission denied; make it readable") from None
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(
                    f"{path}: line {lineno} is not valid UTF-8 at byte offset "
                    f"{offset + exc.start} ({exc.reason}); re-run collect"
                ) from None
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(
                    f"{path}: line {lineno} is not valid JSON ({exc.msg}, byte offset "
                    f"{offset + len(line[: exc.pos].encode())}); re-run collect"
                ) from None
            offset += len(raw)
            if not isinstance(rec, dict):
                raise UserError(f"{path}: line {lineno} is not a JSON object; re-run collect")
            missing = missing_fields(rec)
            if missing:
                raise UserError(
                    f"{path}: line {lineno} has no field '{missing[0]}'; "
                    "re-run collect or fix the source mapping"
                )
            records.append(rec)
    return records


def _float_fields() -> frozenset[str]:
    return frozenset(n for n, f in MovieRecord.model_fields.items() if f.annotation == float | None)


def _int_fields() -> frozenset[str]:
    return frozenset(n for n, f in MovieRecord.model_fields.items() if f.annotation == int | None)


FLOAT_FIELDS, INT_FIELDS = _float_fields(), _int_fields()


def type_problem(rec: dict[str, Any]) -> str | None:
    """The drop reason for a record MovieRecord refuses (`missing_<field>` for a required field
    that is None, else `invalid_<field>`), or None. Whole-number floats count as integers and
    integers as floats; ISO date strings as dates."""
    check = dict(rec)
    for name in FLOAT_FIELDS:
        if type(check[name]) is int:
            check[name] = float(check[name])
    for name in INT_FIELDS:
        if type(check[name]) is float and check[name].is_integer():
            check[name] = int(check[name])
    if isinstance(check["release_date"], str):
        try:
            check["release_date"] = dt.date.fromisoformat(check["release_date"])
        except ValueError:
            return "invalid_release_date"
    try:
        MovieRecord.model_validate(check)
    except ValidationError as exc:
        field = str(exc.errors(include_url=False)[0]["loc"][0])
        return f"missing_{field}" if rec.get(field) is None else f"invalid_{field}"
    return None


def repair_sample(rec: dict[str, Any], fixed: Counter[str]) -> dict[str, Any]:
    """The bundled sample's known errors, fixed: numeric titles stored as numbers (the films
    "1776" and "300") and two-digit years read as 20xx (1946 stored as 2046)."""
    out = dict(rec)
    title = out["title"]
    if isinstance(title, int | float) and not isinstance(title, bool):
        out["title"] = out["original_title"] = str(title)
        fixed["title_from_number"] += 1
    date = out["release_date"]
    if isinstance(date, str) and date[:4].isdigit() and int(date[:4]) > SAMPLE_LAST_YEAR:
        year = int(date[:4]) - 100
        day = "28" if date[5:] == "02-29" and not calendar.isleap(year) else date[8:]
        out["release_date"] = f"{year:04d}{date[4:8]}{day}"
        fixed["century_shifted"] += 1
    return out


def clean_record(
    rec: dict[str, Any], params: PrepareParams, snapshot: dt.date, fixed: Counter[str]
) -> tuple[dict[str, Any] | None, str | None]:
    """Return (cleaned record, None) or (None, drop reason). Never mutates `rec`."""
    out = repair_sample(rec, fixed) if rec.get("data_source") == "sample" else dict(rec)
    problem = type_problem(out)
    if problem:
        return None, problem
    for name in INT_FIELDS:
        if type(out[name]) is float:
            out[name] = int(out[name])
    for name in FLOAT_FIELDS:
        if type(out[name]) is int:
            out[name] = float(out[name])
    if not isinstance(out["title"], str) or not out["title"].strip():
        return None, "missing_title"
    out["title"] = out["title"].strip()

    if out["release_date"] is None:
        return None, "missing_release_date"
    try:
        date = dt.date.fromisoformat(out["release_date"])
    except ValueError:
        return None, "invalid_release_date"
    if date > snapshot:
        return None, "release_after_snapshot"
    out["release_date"] = date.isoformat()

    budget, revenue = out["budget"], out["revenue"]
    if budget is None or budget <= 0:
        return None, "missing_budget"
    if budget < params.min_budget or budget > MAX_BUDGET:
        return None, "budget_out_of_range"
    if revenue is None or revenue <= 0:
        return None, "missing_revenue"
    if revenue < params.min_revenue:
        return None, "revenue_below_floor"
    if out["runtime"] is not None and not 0 < out["runtime"] <= MAX_RUNTIME:
        out["runtime"] = None
        fixed["runtime_out_of_range"] += 1
    return out, None


def prepare(
    records: Sequence[dict[str, Any]], params: PrepareParams, snapshot: dt.date
) -> Prepared:
    dropped: Counter[str] = Counter()
    fixed: Counter[str] = Counter()
    seen: set[tuple[str, str]] = set()
    seen_ids: set[tuple[str, int]] = set()
    kept = []
    for rec in sorted(records, key=lambda r: (str(r["data_source"]), _as_int(r["id"]))):
        cleaned, reason = clean_record(rec, params, snapshot, fixed)
        if cleaned is not None:
            key = (cleaned["title"].casefold(), cleaned["release_date"])
            id_key = (cleaned["data_source"], cleaned["id"])
            if key in seen or id_key in seen_ids:
                reason, cleaned = "duplicate", None
            else:
                seen.add(key)
                seen_ids.add(id_key)
        if cleaned is None:
            dropped[reason or "unknown"] += 1
        else:
            kept.append(cleaned)
    if not kept:
        raise UserError("prepare: no rows left after cleaning; check the collect output and params")

    df = pd.DataFrame.from_records(kept, columns=list(FIELDS))
    df["release_date"] = pd.to_datetime(df["release_date"], format="%Y-%m-%d")
    df["success"] = (df["revenue"] >= params.roi_threshold * df["budget"]).astype("int8")
    df = df.sort_values(["release_date", "id"], kind="mergesort").reset_index(drop=True)
    mature_until, test_start = split_dates(snapshot, params)
    immature = df[df["release_date"] > pd.Timestamp(mature_until)]
    df = df[df["release_date"] <= pd.Timestamp(mature_until)]
    cut = pd.Timestamp(test_start)
    train = df[df["release_date"] < cut].reset_index(drop=True)
    test = df[df["release_date"] >= cut].reset_index(drop=True)
    if train.empty or test.empty:
        empty = "train" if train.empty else "test"
        raise UserError(
            f"params.yaml: prepare.test_years {params.test_years} with maturity_days "
            f"{params.maturity_days} and snapshot {snapshot} (collect.release_date_lte) leave "
            f"the {empty} set empty; choose values inside the data's range"
        )
    checked = checks(train, test, snapshot)
    report = {
        "rows_in": len(records),
        "rows_out": len(df),
        "sources": {
            str(k): int(v) for k, v in df["data_source"].value_counts().sort_index().items()
        },
        "dropped": dict(sorted(dropped.items())),
        "fixed": dict(sorted(fixed.items())),
        "immature": {
            "rows": len(immature),
            "released_after": mature_until.isoformat(),
            "titles": immature["title"].head(LISTED_IMMATURE).tolist(),
        },
        "train": _split_summary(train),
        "test": _split_summary(test),
        "coverage": {"train": coverage(train), "test": coverage(test)},
        "checks": checked,
        "passed": all(checked.values()),
        "label": {
            "definition": "revenue >= roi_threshold * budget",
            "roi_threshold": params.roi_threshold,
            "test_start_date": test_start.isoformat(),
            "snapshot_date": snapshot.isoformat(),
            "maturity_days": params.maturity_days,
        },
    }
    return Prepared(train=train, test=test, report=report)


def checks(train: pd.DataFrame, test: pd.DataFrame, snapshot: dt.date) -> dict[str, bool]:
    """What `passed` means: enough films on both sides, a label that is neither rare nor
    near-universal, and no film dated after the snapshot."""
    lo, hi = BASE_RATE_RANGE
    both = pd.concat([train, test])
    return {
        "enough_train_rows": len(train) >= MIN_SPLIT_ROWS,
        "enough_test_rows": len(test) >= MIN_SPLIT_ROWS,
        "train_base_rate_in_range": bool(lo <= train["success"].mean() <= hi),
        "test_base_rate_in_range": bool(lo <= test["success"].mean() <= hi),
        "no_release_after_snapshot": bool(both["release_date"].max() <= pd.Timestamp(snapshot)),
    }


def coverage(df: pd.DataFrame) -> dict[str, float]:
    """Share of films with a known value (a non-empty list) for each pre-release field."""
    out = {}
    for name in PRE_RELEASE:
        col = df[name]
        known = (
            col.map(len) > 0
            if col.dtype == object and col.map(type).eq(list).any()
            else col.notna()
        )
        out[name] = round(float(known.mean()), 6)
    return out


def _as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _split_summary(df: pd.DataFrame) -> dict[str, Any]:
    return {
        "rows": len(df),
        "base_rate": round(float(df["success"].mean()), 6),
        "first_release": df["release_date"].min().date().isoformat(),
        "last_release": df["release_date"].max().date().isoformat(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--input", type=Path, required=True, help="normalized records (JSONL)")
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--report", type=Path, required=True, help="validation report (JSON)")
    args = parser.parse_args(argv)
    params = load_section(PrepareParams, "prepare", args.params)
    snapshot = load_key(CollectParams, "collect", "release_date_lte", args.params)

    result = prepare(read_records(args.input), params, snapshot)
    with staged_outputs(args.train, args.test, args.report) as (train, test, report):
        write_parquet(train, result.train)
        write_parquet(test, result.test)
        write_json(report, result.report)
    record(rows=result.report["rows_out"])
    log.info(
        "prepare: %s rows in, %s out (train %s, test %s), dropped %s",
        result.report["rows_in"],
        result.report["rows_out"],
        len(result.train),
        len(result.test),
        result.report["dropped"],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
