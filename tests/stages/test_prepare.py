from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stages.core.cli import UserError
from stages.prepare import PrepareParams, prepare, read_records
from tests.conftest import make_record

PARAMS = PrepareParams(
    roi_threshold=2.0,
    test_start_date=dt.date(2006, 1, 1),
    snapshot_date=dt.date(2011, 12, 31),
    min_budget=10_000,
)
Records = Callable[..., list[dict[str, Any]]]


def test_label_is_revenue_over_threshold_times_budget() -> None:
    recs = [
        make_record(1, budget=10_000_000, revenue=20_000_000, release_date="2000-01-01"),
        make_record(2, budget=10_000_000, revenue=19_999_999, release_date="2000-01-02"),
        make_record(3, budget=10_000_000, revenue=50_000_000, release_date="2007-01-01"),
    ]
    out = prepare(recs, PARAMS)
    assert out.train["success"].tolist() == [1, 0]
    assert out.test["success"].tolist() == [1]


def test_split_is_chronological(records: Records) -> None:
    out = prepare(records(), PARAMS)
    assert out.train["release_date"].max() < dt.datetime(2006, 1, 1)
    assert out.test["release_date"].min() >= dt.datetime(2006, 1, 1)
    assert len(out.train) + len(out.test) == out.report["rows_out"]


def test_two_digit_year_dates_are_shifted_back_a_century() -> None:
    recs = [make_record(1, release_date="2046-12-31"), make_record(2, release_date="2008-01-01")]
    out = prepare(recs, PARAMS)
    assert out.train["release_date"].dt.year.tolist() == [1946]
    assert out.report["fixed"] == {"century_shifted": 1}


def test_zero_budget_and_revenue_are_dropped_and_counted() -> None:
    recs = [
        make_record(1, budget=0),
        make_record(2, revenue=0),
        make_record(3, revenue=None),
        make_record(4, release_date="2001-01-01"),
        make_record(5, release_date="2008-01-01"),
    ]
    out = prepare(recs, PARAMS)
    assert out.report["dropped"] == {"missing_budget": 1, "missing_revenue": 2}
    assert out.report["rows_in"] == 5
    assert out.report["rows_out"] == 2


def test_integer_title_becomes_text() -> None:
    recs = [
        make_record(1, title=1776, release_date="2001-01-01"),
        make_record(2, release_date="2008-01-01"),
    ]
    out = prepare(recs, PARAMS)
    assert "1776" in set(out.train["title"]) | set(out.test["title"])
    assert out.report["fixed"]["title_from_number"] == 1


def test_duplicates_keep_the_first_id() -> None:
    recs = [
        make_record(2, title="Heat", release_date="1995-12-15"),
        make_record(1, title="heat ", release_date="1995-12-15"),
        make_record(3, release_date="2008-01-01"),
    ]
    out = prepare(recs, PARAMS)
    assert out.train["id"].tolist() == [1]
    assert out.report["dropped"] == {"duplicate": 1}


def test_wrong_type_drops_row_with_field_reason() -> None:
    recs = [
        make_record(1, budget="lots"),
        make_record(2, release_date="2000-01-01"),
        make_record(3, release_date="2008-01-01"),
    ]
    assert prepare(recs, PARAMS).report["dropped"] == {"invalid_budget": 1}


def test_input_records_are_not_mutated() -> None:
    recs = [
        make_record(1, title=300, release_date="2046-01-01"),
        make_record(2, release_date="2008-01-01"),
    ]
    before = json.dumps(recs, sort_keys=True)
    prepare(recs, PARAMS)
    assert json.dumps(recs, sort_keys=True) == before


def test_empty_test_split_is_a_user_error(records: Records) -> None:
    late = PrepareParams(2.0, dt.date(2030, 1, 1), dt.date(2031, 1, 1), 10_000)
    with pytest.raises(UserError) as err:
        prepare(records(), late)
    assert str(err.value) == (
        "params.yaml: prepare.test_start_date 2030-01-01 leaves the test set empty; "
        "choose a date inside the data's range"
    )


def test_missing_field_in_input_names_line(tmp_path: Path) -> None:
    path = tmp_path / "movies.jsonl"
    bad = make_record(2)
    del bad["budget"]
    path.write_text(json.dumps(make_record(1)) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(UserError) as err:
        read_records(path)
    assert str(err.value) == (
        f"{path}: line 2 has no field 'budget'; re-run collect or fix the source mapping"
    )
