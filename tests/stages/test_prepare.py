from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from stages.core.cli import UserError
from stages.prepare import main, prepare, read_records, split_dates
from tests.conftest import ROOT, SNAPSHOT, fixture_split, make_record

PARAMS = fixture_split()
Records = Callable[..., list[dict[str, Any]]]


def test_label_is_revenue_over_threshold_times_budget() -> None:
    recs = [
        make_record(1, budget=10_000_000, revenue=20_000_000, release_date="2000-01-01"),
        make_record(2, budget=10_000_000, revenue=19_999_999, release_date="2000-01-02"),
        make_record(3, budget=10_000_000, revenue=50_000_000, release_date="2007-01-01"),
    ]
    out = prepare(recs, PARAMS, SNAPSHOT)
    assert out.train["success"].tolist() == [1, 0]
    assert out.test["success"].tolist() == [1]


def test_split_is_chronological(records: Records) -> None:
    out = prepare(records(), PARAMS, SNAPSHOT)
    assert out.train["release_date"].max() < dt.datetime(2006, 1, 1)
    assert out.test["release_date"].min() >= dt.datetime(2006, 1, 1)
    assert len(out.train) + len(out.test) == out.report["rows_out"]


def test_the_samples_two_digit_years_are_shifted_back_a_century() -> None:
    recs = [make_record(1, release_date="2046-12-31"), make_record(2, release_date="2008-01-01")]
    out = prepare(recs, PARAMS, SNAPSHOT)
    assert out.train["release_date"].dt.year.tolist() == [1946]
    assert out.report["fixed"] == {"century_shifted": 1}


def test_another_sources_film_after_the_snapshot_is_dropped_never_shifted() -> None:
    """A 2015 TMDB film in a 2011 snapshot is a counted drop: no century repair for TMDB."""
    recs = [
        make_record(1, data_source="tmdb", release_date="2015-06-01"),
        make_record(2, data_source="tmdb", title=1776, release_date="2001-01-01"),
        make_record(3, data_source="tmdb", release_date="2008-01-01"),
        make_record(4, data_source="tmdb", release_date="2002-01-01"),
    ]
    out = prepare(recs, PARAMS, SNAPSHOT)
    assert out.report["dropped"] == {"invalid_title": 1, "release_after_snapshot": 1}
    assert out.report["fixed"] == {}
    assert out.test["id"].tolist() == [3]


def test_a_revenue_below_the_floor_is_an_entry_error() -> None:
    recs = [
        make_record(1, revenue=7, release_date="2001-01-01"),
        make_record(2, revenue=1_000, release_date="2002-01-01"),
        make_record(3, release_date="2008-01-01"),
    ]
    out = prepare(recs, PARAMS, SNAPSHOT)
    assert out.report["dropped"] == {"revenue_below_floor": 1}
    assert out.train["id"].tolist() == [2]


def test_films_too_recent_to_judge_get_no_label() -> None:
    recs = [
        make_record(1, release_date="2001-01-01"),
        make_record(2, release_date="2008-01-01"),
        make_record(3, title="Last Week", release_date="2011-12-24"),
        make_record(4, release_date="2010-12-31"),
    ]
    out = prepare(recs, PARAMS, SNAPSHOT)
    assert out.report["immature"] == {
        "rows": 1,
        "released_after": "2010-12-31",
        "titles": ["Last Week"],
    }
    assert 3 not in set(out.train["id"]) | set(out.test["id"])
    assert out.test["id"].tolist() == [2, 4]


def test_the_split_moves_with_the_snapshot(records: Records) -> None:
    """One date changes, the split follows: a year later, the test period is a year later."""
    assert split_dates(SNAPSHOT, PARAMS) == (dt.date(2010, 12, 31), dt.date(2006, 1, 1))
    a_year_on = split_dates(dt.date(2012, 12, 31), PARAMS)  # 2012 is a leap year
    assert a_year_on == (dt.date(2012, 1, 1), dt.date(2007, 1, 1))
    assert split_dates(dt.date(2012, 6, 30), PARAMS) == (dt.date(2011, 7, 1), dt.date(2006, 1, 1))
    later = prepare(records(), PARAMS, dt.date(2012, 12, 31))
    assert later.test["release_date"].min() >= dt.datetime(2007, 1, 1)
    assert later.train["release_date"].max() < dt.datetime(2007, 1, 1)


def test_passed_comes_from_real_checks(records: Records) -> None:
    out = prepare(records(450), PARAMS, SNAPSHOT)
    assert out.report["passed"] is True
    assert set(out.report["checks"]) == {
        "enough_train_rows",
        "enough_test_rows",
        "train_base_rate_in_range",
        "test_base_rate_in_range",
        "no_release_after_snapshot",
    }
    few = prepare(records(120), PARAMS, SNAPSHOT)
    assert few.report["checks"]["enough_test_rows"] is False
    assert few.report["passed"] is False


def test_coverage_of_each_pre_release_field_is_reported(records: Records) -> None:
    out = prepare(records(), PARAMS, SNAPSHOT)
    train = out.report["coverage"]["train"]
    assert train["budget"] == 1.0
    assert train["cast"] == 0.0  # fixture films list no cast
    assert 0.7 < train["distributor"] < 0.8  # one film in four has none
    assert "revenue" not in train


def test_zero_budget_and_revenue_are_dropped_and_counted() -> None:
    recs = [
        make_record(1, budget=0),
        make_record(2, revenue=0),
        make_record(3, revenue=None),
        make_record(4, release_date="2001-01-01"),
        make_record(5, release_date="2008-01-01"),
    ]
    out = prepare(recs, PARAMS, SNAPSHOT)
    assert out.report["dropped"] == {"missing_budget": 1, "missing_revenue": 2}
    assert out.report["rows_in"] == 5
    assert out.report["rows_out"] == 2


def test_integer_title_becomes_text() -> None:
    recs = [
        make_record(1, title=1776, release_date="2001-01-01"),
        make_record(2, release_date="2008-01-01"),
    ]
    out = prepare(recs, PARAMS, SNAPSHOT)
    assert "1776" in set(out.train["title"]) | set(out.test["title"])
    assert out.report["fixed"]["title_from_number"] == 1


def test_duplicates_keep_the_first_id() -> None:
    recs = [
        make_record(2, title="Heat", release_date="1995-12-15"),
        make_record(1, title="heat ", release_date="1995-12-15"),
        make_record(3, release_date="2008-01-01"),
    ]
    out = prepare(recs, PARAMS, SNAPSHOT)
    assert out.train["id"].tolist() == [1]
    assert out.report["dropped"] == {"duplicate": 1}


def test_wrong_type_drops_row_with_field_reason() -> None:
    recs = [
        make_record(1, budget="lots"),
        make_record(2, release_date="2000-01-01"),
        make_record(3, release_date="2008-01-01"),
    ]
    assert prepare(recs, PARAMS, SNAPSHOT).report["dropped"] == {"invalid_budget": 1}


def test_input_records_are_not_mutated() -> None:
    recs = [
        make_record(1, title=300, release_date="2046-01-01"),
        make_record(2, release_date="2008-01-01"),
    ]
    before = json.dumps(recs, sort_keys=True)
    prepare(recs, PARAMS, SNAPSHOT)
    assert json.dumps(recs, sort_keys=True) == before


def test_empty_test_split_is_a_user_error(records: Records) -> None:
    with pytest.raises(UserError) as err:
        prepare(records(), replace(PARAMS, test_years=1), dt.date(2031, 1, 1))
    assert str(err.value) == (
        "params.yaml: prepare.test_years 1 with maturity_days 365 and snapshot 2031-01-01 "
        "(collect.release_date_lte) leave the test set empty; choose values inside the "
        "data's range"
    )


def test_the_snapshot_is_read_from_the_collect_section(tmp_path: Path, records: Records) -> None:
    raw = tmp_path / "movies.jsonl"
    raw.write_text("".join(json.dumps(r) + "\n" for r in records()))
    params = (ROOT / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(
        params.replace('release_date_lte: "2011-12-31"', 'release_date_lte: "2012-12-31"')
    )
    out = {name: tmp_path / f"{name}.out" for name in ("train", "test", "report")}
    argv = ["--params", str(tmp_path / "params.yaml"), "--input", str(raw)]
    assert main([*argv, *(a for k, v in out.items() for a in (f"--{k}", str(v)))]) == 0
    report = json.loads(out["report"].read_text())
    assert report["label"]["snapshot_date"] == "2012-12-31"
    assert report["label"]["test_start_date"] == "2007-01-01"


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
