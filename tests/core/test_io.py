from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from stages.core.io import atomic_open, write_json, write_parquet


def write_then_fail(target: Path, text: str) -> None:
    with atomic_open(target) as fh:
        fh.write(text)
        raise RuntimeError("boom")


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        write_then_fail(target, "partial")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_version(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        write_then_fail(target, "new")
    assert target.read_text() == "old"


def test_json_is_sorted_and_stable(tmp_path: Path) -> None:
    write_json(tmp_path / "a.json", {"b": 1, "a": [1.5]})
    assert (tmp_path / "a.json").read_text() == '{\n  "a": [\n    1.5\n  ],\n  "b": 1\n}\n'


def test_parquet_bytes_are_deterministic(tmp_path: Path) -> None:
    df = pd.DataFrame({"x": [1, 2], "tags": [["a"], []]})
    write_parquet(tmp_path / "1.parquet", df)
    write_parquet(tmp_path / "2.parquet", df)
    assert (tmp_path / "1.parquet").read_bytes() == (tmp_path / "2.parquet").read_bytes()
