"""DVC stage `prepare`: validate and clean records, derive the label, split chronologically."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from stages.core.cli import UserError, run
from stages.core.io import write_json, write_parquet
from stages.core.params import load_section
from stages.core.pushgateway import record
from stages.core.schema import FIELDS, MovieRecord, missing_fields

log = logging.getLogger(__name__)

MAX_BUDGET = 2_000_000_000  # no film has cost more; a larger figure is a data error
MAX_RUNTIME = 600


@dataclass(frozen=True)
class PrepareParams:
    roi_threshold: float
    test_start_date: dt.date
    snapshot_date: dt.date
    min_budget: int


@dataclass(frozen=True)
class Prepared:
    train: pd.DataFrame
    test: pd.DataFrame
    report: dict[str, Any]


def read_records(path: Path) -> list[dict[str, Any]]:
    """Read JSONL records; a structural problem (bad JSON, missing field) stops the stage."""
    records = []
    if not path.is_file():
        raise UserError(f"{path}: not found; run the collect stage first (dvc repro)")
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(
                    f"{path}: line {lineno} is not valid JSON ({exc.msg}); re-run collect"
                ) from None
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


def clean_record(
    rec: dict[str, Any], params: PrepareParams, fixed: Counter[str]
) -> tuple[dict[str, Any] | None, str | None]:
    """Return (cleaned record, None) or (None, drop reason). Never mutates `rec`."""
    out = dict(rec)
    title = out["title"]
    if isinstance(title, int | float) and not isinstance(title, bool):
        out["title"] = out["original_title"] = str(title)  # e.g. the films "1776" and "300"
        fixed["title_from_number"] += 1
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
    if date > params.snapshot_date:
        # The sample stores two-digit years: 1946 was read as 2046.
        try:
            shifted = date.replace(year=date.year - 100)
        except ValueError:  # 29 February of a year that is no leap year a century earlier
            shifted = date.replace(year=date.year - 100, day=28)
        if shifted > params.snapshot_date:
            return None, "release_after_snapshot"
        date = shifted
        fixed["century_shifted"] += 1
    out["release_date"] = date.isoformat()

    budget, revenue = out["budget"], out["revenue"]
    if budget is None or budget <= 0:
        return None, "missing_budget"
    if budget < params.min_budget or budget > MAX_BUDGET:
        return None, "budget_out_of_range"
    if revenue is None or revenue <= 0:
        return None, "missing_revenue"
    if out["runtime"] is not None and not 0 < out["runtime"] <= MAX_RUNTIME:
        out["runtime"] = None
        fixed["runtime_out_of_range"] += 1
    return out, None


def prepare(records: Sequence[dict[str, Any]], params: PrepareParams) -> Prepared:
    dropped: Counter[str] = Counter()
    fixed: Counter[str] = Counter()
    seen: set[tuple[str, str]] = set()
    seen_ids: set[tuple[str, int]] = set()
    kept = []
    for rec in sorted(records, key=lambda r: (str(r["data_source"]), _as_int(r["id"]))):
        cleaned, reason = clean_record(rec, params, fixed)
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
    cut = pd.Timestamp(params.test_start_date)
    train = df[df["release_date"] < cut].reset_index(drop=True)
    test = df[df["release_date"] >= cut].reset_index(drop=True)
    if train.empty or test.empty:
        empty = "train" if train.empty else "test"
        raise UserError(
            f"params.yaml: prepare.test_start_date {params.test_start_date} leaves the {empty} "
            "set empty; choose a date inside the data's range"
        )
    report = {
        "rows_in": len(records),
        "rows_out": len(df),
        "dropped": dict(sorted(dropped.items())),
        "fixed": dict(sorted(fixed.items())),
        "train": _split_summary(train),
        "test": _split_summary(test),
        "passed": True,
        "label": {
            "definition": "revenue >= roi_threshold * budget",
            "roi_threshold": params.roi_threshold,
            "test_start_date": params.test_start_date.isoformat(),
            "snapshot_date": params.snapshot_date.isoformat(),
        },
    }
    return Prepared(train=train, test=test, report=report)


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

    result = prepare(read_records(args.input), params)
    write_parquet(args.train, result.train)
    write_parquet(args.test, result.test)
    write_json(args.report, result.report)
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
