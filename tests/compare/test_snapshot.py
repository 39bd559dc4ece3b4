"""What a snapshot keeps of a side's files."""

from __future__ import annotations

from stages.compare.snapshot import data_summary


def test_data_summary_picks_rows_base_rate_and_drops() -> None:
    validation = {
        "rows_in": 10,
        "rows_out": 7,
        "dropped": {"a": 2, "b": 1},
        "fixed": {"x": 4},
        "train": {"rows": 5, "base_rate": 0.4, "first_release": "2000-01-01"},
        "passed": True,
    }
    assert data_summary(validation) == {
        "rows_in": 10,
        "rows_out": 7,
        "dropped.a": 2,
        "dropped.b": 1,
        "dropped_total": 3,
        "train.rows": 5,
        "train.base_rate": 0.4,
        "passed": True,
    }
