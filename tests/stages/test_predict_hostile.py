"""The batch command against hostile inputs, one row each: the exact exit code, stderr one
line without a traceback when refused, previous outputs byte-identical unless the run
succeeded, and no temporary file or process left behind (also after SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from stages.scoring.outputs import TEMP_MARK
from tests.conftest import ROOT, sh, tool_env

GOOD = {"title": "Good", "release_date": "2009-07-01", "budget": 30000000, "genres": ["Drama"]}
GOOD_CSV = "Good,2009-07-01,30000000,Drama\n"
HEADER = "title,release_date,budget,genres\n"
PREVIOUS = b"row,title\nprevious good scores\n"
PREVIOUS_REJECTED = b"row,reason\nprevious rejected\n"


def jsonl(*records: object) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


@dataclass(frozen=True)
class Attack:
    name: str
    input_name: str
    content: bytes
    code: int
    message: str  # in the one stderr line (exit 2), or in the rejected file (exit 0)
    args: Callable[[Path, Path], list[str | Path]] = lambda src, d: []
    output: Callable[[Path, Path], Path] = lambda src, d: d / "scores.csv"


def _symlink_to_input(src: Path, d: Path) -> Path:
    link = d / "link.csv"
    link.symlink_to(src)
    return link


def _under_a_file(src: Path, d: Path) -> Path:
    (d / "afile").write_text("x")
    return d / "afile" / "scores.csv"


ATTACKS = [
    Attack(
        "output is input",
        "m.csv",
        (HEADER + GOOD_CSV).encode(),
        2,
        "is the same file as --input",
        output=lambda src, d: src,
    ),
    Attack(
        "output is a symlink to input",
        "m.csv",
        (HEADER + GOOD_CSV).encode(),
        2,
        "is the same file as --input",
        output=_symlink_to_input,
    ),
    Attack(
        "rejected is input",
        "m.csv",
        (HEADER + GOOD_CSV).encode(),
        2,
        "--rejected",
        args=lambda src, d: ["--rejected", src],
    ),
    Attack(
        "rejected is output",
        "m.csv",
        (HEADER + GOOD_CSV).encode(),
        2,
        "is the same file as --output",
        args=lambda src, d: ["--rejected", d / "scores.csv"],
    ),
    Attack(
        "output under a file",
        "m.csv",
        (HEADER + GOOD_CSV).encode(),
        2,
        "is a file, not a directory",
        output=_under_a_file,
    ),
    Attack(
        "output is a directory",
        "m.csv",
        (HEADER + GOOD_CSV).encode(),
        2,
        "is a directory",
        output=lambda src, d: d,
    ),
    Attack(
        "output in /proc",
        "m.csv",
        (HEADER + GOOD_CSV).encode(),
        2,
        "/proc",
        output=lambda src, d: Path("/proc/scores.csv"),
    ),
    Attack(
        "every row rejected",
        "m.csv",
        (HEADER + "A,2009-07-01,-5,Drama\n").encode(),
        2,
        "every row was rejected (1), e.g. row 1: budget",
    ),
    Attack(
        "latin-1 csv",
        "m.csv",
        (HEADER + "Café,2009-07-01,1000,Drama\n").encode("latin-1"),
        2,
        "byte 36 (line 2) is not UTF-8",
    ),
    Attack("binary jsonl", "m.jsonl", b"\x00\x01\x02\xff" * 100, 2, "NUL byte: a binary file"),
    Attack("binary csv", "m.csv", HEADER.encode() + b"\x00\x01" * 50, 2, "NUL byte"),
    Attack("utf-16 csv", "m.csv", (HEADER + GOOD_CSV).encode("utf-16"), 2, "not UTF-8"),
    Attack("empty csv", "m.csv", b"", 2, "no column 'title'"),
    Attack(
        "post-release column",
        "m.csv",
        b"title,release_date,budget,revenue\n",
        2,
        "column 'revenue' is not a pre-release field",
    ),
    Attack("unknown format", "m.xlsx", b"PK\x03\x04", 2, "unknown format '.xlsx'"),
    Attack(
        "header with a bad quote",
        "m.csv",
        b'title,"release_date\n',
        2,
        "the header line is not CSV",
    ),
    Attack(
        "jobs 0",
        "m.csv",
        (HEADER + GOOD_CSV).encode(),
        2,
        "--jobs 0",
        args=lambda src, d: ["--jobs", "0"],
    ),
    Attack(
        "missing model",
        "m.csv",
        (HEADER + GOOD_CSV).encode(),
        2,
        "model not found",
        args=lambda src, d: ["--model", d / "none.skops"],
    ),
    Attack(
        "corrupt model",
        "m.csv",
        (HEADER + GOOD_CSV).encode(),
        2,
        "not a readable skops model",
        args=lambda src, d: ["--model", d / "m.csv"],
    ),
    Attack(
        "jsonl cut inside a UTF-8 character",
        "m.jsonl",
        json.dumps({"title": "é"}).encode()[:-3],
        2,
        "every row was rejected",
    ),
    # malformed rows are rejected rows; the run succeeds with the good ones
    Attack(
        "Excel CSV UTF-8 with BOM",
        "m.csv",
        ("\ufeff" + HEADER + GOOD_CSV + "B,2009\n").encode(),
        0,
        "has 2 cells, the header has 4",
    ),
    Attack("short row", "m.csv", (HEADER + GOOD_CSV + "B,2009-07-01\n").encode(), 0, "has 2 cells"),
    Attack(
        "long row",
        "m.csv",
        (HEADER + GOOD_CSV + "B,2009-07-01,5,Drama,x\n").encode(),
        0,
        "has 5 cells",
    ),
    Attack(
        "unterminated quote",
        "m.csv",
        (HEADER + GOOD_CSV + 'B,"2009-07-01,5,Drama\n').encode(),
        0,
        "not a valid CSV row (unexpected end of data)",
    ),
    Attack(
        "quote inside a cell",
        "m.csv",
        (HEADER + 'B,"2009"-07-01,5,Drama\n' + GOOD_CSV).encode(),
        0,
        "not a valid CSV row",
    ),
    Attack(
        "over-long field",
        "m.csv",
        (HEADER + "B,2009-07-01,5," + "D" * (2 << 20) + "\n" + GOOD_CSV).encode(),
        0,
        "field larger than field limit",
    ),
    Attack(
        "digits beyond int limits in csv",
        "m.csv",
        (HEADER + GOOD_CSV + "B,2009-07-01," + "9" * 5000 + ",Drama\n").encode(),
        0,
        "budget: Input should be a valid integer",
    ),
    Attack(
        "bool as budget",
        "m.jsonl",
        jsonl(GOOD, dict(GOOD, budget=True)),
        0,
        "budget: Input should be a valid integer",
    ),
    Attack(
        "integer as date",
        "m.jsonl",
        jsonl(GOOD, dict(GOOD, release_date=0)),
        0,
        "release_date: Input should be a valid date string YYYY-MM-DD",
    ),
    Attack(
        "digit string as date",
        "m.jsonl",
        jsonl(GOOD, dict(GOOD, release_date="1276819200")),
        0,
        "release_date: Input should be a valid date string",
    ),
    Attack(
        "0 as a bool",
        "m.jsonl",
        jsonl(GOOD, dict(GOOD, is_sequel=0)),
        0,
        "is_sequel: Input should be a valid boolean",
    ),
    Attack(
        "number as a string",
        "m.jsonl",
        jsonl(GOOD, dict(GOOD, budget="30000000")),
        0,
        "budget: Input should be a valid integer",
    ),
    Attack(
        "deep nesting",
        "m.jsonl",
        jsonl(GOOD) + b"[" * 5000 + b"]" * 5000 + b"\n",
        0,
        "Invalid JSON",
    ),
    Attack(
        "huge integer",
        "m.jsonl",
        jsonl(GOOD) + b'{"budget": ' + b"9" * 5000 + b"}\n",
        0,
        "Invalid JSON",
    ),
    Attack(
        "jsonl with a BOM",
        "m.jsonl",
        b"\xef\xbb\xbf" + jsonl(GOOD, dict(GOOD, budget=-1)),
        0,
        "budget: Input should be greater than 0",
    ),
    Attack(
        "latin-1 jsonl line", "m.jsonl", jsonl(GOOD) + b'{"title": "Caf\xe9"}\n', 0, "Invalid JSON"
    ),
]


def leftovers(*dirs: Path) -> list[Path]:
    return [p for d in dirs if d.is_dir() for p in d.iterdir() if TEMP_MARK in p.name]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_hostile_input(tmp_path: Path, model_path: Path, attack: Attack) -> None:
    src = tmp_path / attack.input_name
    src.write_bytes(attack.content)
    (tmp_path / "scores.csv").write_bytes(PREVIOUS)
    (tmp_path / "scores.rejected.csv").write_bytes(PREVIOUS_REJECTED)
    out = attack.output(src, tmp_path)
    args = attack.args(src, tmp_path)
    model: list[str | Path] = [] if "--model" in args else ["--model", model_path]
    proc = sh(
        "python",
        "-m",
        "stages.predict",
        *model,
        "--input",
        src,
        "--output",
        out,
        *args,
        cwd=ROOT,
        check=False,
        env=tool_env(),
    )
    assert proc.returncode == attack.code, proc.stderr
    assert "Traceback" not in proc.stderr
    if attack.code == 2:
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith("error: ")
        assert attack.message in lines[0]
        assert (tmp_path / "scores.csv").read_bytes() == PREVIOUS
        assert (tmp_path / "scores.rejected.csv").read_bytes() == PREVIOUS_REJECTED
    else:
        scores = (tmp_path / "scores.csv").read_text().splitlines()
        assert len(scores) == 2
        assert ",Good,2009-07-01," in scores[1]
        assert attack.message in (tmp_path / "scores.rejected.csv").read_text()
    if attack.input_name.endswith(".csv") and attack.code == 2:
        assert src.read_bytes() == attack.content
    assert leftovers(tmp_path, out.parent) == []


def test_a_stale_temp_file_is_removed_by_the_next_run(tmp_path: Path, model_path: Path) -> None:
    src = tmp_path / "m.jsonl"
    src.write_bytes(jsonl(GOOD))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".scores.csv{TEMP_MARK}{dead.pid}"
    stale.write_text("half")
    proc = sh(
        "python",
        "-m",
        "stages.predict",
        "--model",
        model_path,
        "--input",
        src,
        "--output",
        tmp_path / "scores.csv",
        cwd=ROOT,
        check=False,
        env=tool_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert not stale.exists()


def _children(pid: int) -> set[int]:
    """Every descendant of `pid` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for child, parent in parents.items():
            if parent == p and child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_leaves_no_worker_and_no_temp_file(tmp_path: Path, model_path: Path) -> None:
    src = tmp_path / "big.jsonl"
    line = json.dumps(GOOD).encode() + b"\n"
    src.write_bytes(line * 400_000)
    out = tmp_path / "out" / "scores.csv"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stages.predict",
            "--model",
            str(model_path),
            "--input",
            str(src),
            "--output",
            str(out),
            "--jobs",
            "2",
        ],
        cwd=ROOT,
        env=tool_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline and proc.poll() is None:
            workers = _children(proc.pid)
            if len(workers) >= 2 and out.parent.is_dir():  # a worker and the resource tracker
                break
            time.sleep(0.1)
        assert proc.poll() is None, "finished before it could be killed: use a larger input"
        time.sleep(1.0)  # scoring and writing
        workers |= _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(map(_alive, workers)):
            time.sleep(0.1)
        assert [p for p in workers if _alive(p)] == []
        assert leftovers(tmp_path, out.parent) == []
        assert not out.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
