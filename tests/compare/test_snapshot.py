"""What a snapshot keeps of a side's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from stages.compare.readers import WorkspaceReader
from stages.compare.snapshot import Paths, Snapshot, data_summary, read_snapshot
from stages.core.cli import UserError


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


def test_read_snapshot_of_a_workspace(tmp_path: Path) -> None:
    (tmp_path / "models/plots").mkdir(parents=True)
    (tmp_path / "models/metrics.json").write_text('{"roc_auc": 0.7, "backtest": {"f1": 0.5}}')
    (tmp_path / "models/plots/roc.png").write_bytes(b"\x89PNG")
    (tmp_path / "models/plots/roc.csv").write_text("x\n")
    (tmp_path / "params.yaml").write_text("train:\n  learning_rate: 0.1\n")
    snap = read_snapshot(WorkspaceReader(tmp_path), "head", Paths())
    assert snap == Snapshot(
        label="head",
        metrics={"roc_auc": 0.7, "backtest.f1": 0.5},
        params={"train.learning_rate": 0.1},
        data=None,
        plots=("roc.png",),
    )


def test_read_snapshot_names_a_broken_file(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models/metrics.json").write_text("{")
    with pytest.raises(UserError, match=r"^base `main`:models/metrics.json: not valid JSON"):
        read_snapshot(WorkspaceReader(tmp_path), "base", Paths(), where="base `main`:")
