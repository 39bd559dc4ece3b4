from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from stages.core.io import (
    STAGING_PREFIX,
    atomic_open,
    staged_outputs,
    write_json,
    write_parquet,
    write_text,
)
from tests.support import tool_env


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


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_staged_outputs_move_every_output_into_place(tmp_path: Path) -> None:
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "stale.csv").write_text("old")
    with staged_outputs(tmp_path / "a.json", tmp_path / "plots", tmp_path / "sub" / "b.txt") as (
        a,
        plots,
        b,
    ):
        write_json(a, {"a": 1})
        write_text(plots / "roc.csv", "x\n")
        write_text(b, "b")
        assert not (tmp_path / "a.json").exists()  # nothing in place before the block ends
    assert _tree(tmp_path) == {
        "a.json": b'{\n  "a": 1\n}\n',
        "plots/roc.csv": b"x\n",  # the folder is replaced whole: no stale file
        "sub/b.txt": b"b",
    }


def test_failed_stage_leaves_previous_outputs_and_no_temp(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("previous a")
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "roc.csv").write_text("previous roc")
    before = _tree(tmp_path)

    def stage() -> None:
        with staged_outputs(tmp_path / "a.json", tmp_path / "plots") as (a, plots):
            write_json(a, {"a": 2})
            write_text(plots / "roc.csv", "new")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        stage()
    assert _tree(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "plots"]


def test_an_output_not_written_is_a_bug_and_nothing_moves(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("previous a")

    def stage() -> None:
        with staged_outputs(tmp_path / "a.json", tmp_path / "b.json") as (a, _b):
            write_json(a, {"a": 2})

    with pytest.raises(RuntimeError, match="did not write"):
        stage()
    assert (tmp_path / "a.json").read_text() == "previous a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


KILLED = """
import sys, time
from pathlib import Path
from stages.core.io import staged_outputs, write_text
with staged_outputs(Path(sys.argv[1])) as (tmp,):
    write_text(tmp, "half")
    print("staged", flush=True)
    time.sleep(60)
"""


def test_staging_left_by_sigkill_is_removed_by_the_next_run(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("previous")
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(target)],
        stdout=subprocess.PIPE,
        text=True,
        env=tool_env(),
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "staged"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stale = [p.name for p in tmp_path.iterdir() if p.name.startswith(STAGING_PREFIX)]
    assert len(stale) == 1  # what the killed run left
    assert target.read_text() == "previous"
    with staged_outputs(target) as (tmp,):
        write_text(tmp, "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    assert target.read_text() == "new"
