"""Hostile inputs, one row each, against the real commands (subprocesses).

Every row asserts the exact exit code, that stderr is ONE line (the error) without
"Traceback", that the previous outputs are byte-identical afterwards and that no temp file
(`.staging-*`, `.*.tmp`) is left. A programming error, by contrast, keeps exit 1 and its
traceback.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, make_record, tool_env
from tests.tmdb_server import FakeTmdb, make_catalog

SAMPLE = ROOT / "data" / "sample" / "movies.json.gz"
SECRET = "tmdb-secret-errors-0a1b"
Setup = Callable[[Path, Path], dict[str, str]]  # (workspace, hostile dir) -> arg overrides


# ---- the workspace: real inputs and previous outputs of every stage -------------------------


def _jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("errors")
    (ws / "params.yaml").write_bytes((ROOT / "params.yaml").read_bytes())
    for d in ("raw", "prepared", "models/plots", "collected"):
        (ws / d).mkdir(parents=True)
    recs = [make_record(i) for i in range(1, 301)]
    recs[1]["title"] = "Amélie été"  # non-ASCII on line 2: a cut inside it is a cut UTF-8
    (ws / "raw" / "movies.jsonl").write_bytes(_jsonl(recs))
    proc = _run(ws, "prepare", {})
    assert proc.returncode == 0, proc.stderr
    # Previous outputs of the other stages: any bytes do, they must only stay as they are.
    (ws / "models" / "model.skops").write_bytes(b"previous model bytes")
    (ws / "models" / "backtest.json").write_bytes(b'{"previous": "backtest"}\n')
    (ws / "models" / "backtest_in.json").write_text(json.dumps({"by_year": {}, "mean": {}}))
    (ws / "models" / "metrics.json").write_bytes(b'{"previous": "metrics"}\n')
    (ws / "models" / "model_card.md").write_bytes(b"# previous card\n")
    (ws / "models" / "plots" / "roc.csv").write_bytes(b"fpr,tpr\n0,0\n")
    (ws / "collected" / "movies.jsonl").write_bytes(b'{"previous": "collect"}\n')
    (ws / "collected" / "summary.json").write_bytes(b'{"previous": "summary"}\n')
    return ws


COMMANDS: dict[str, dict[str, str]] = {
    "collect": {
        "--sample": str(SAMPLE),
        "--output": "collected/movies.jsonl",
        "--summary": "collected/summary.json",
        "--cache": "cache",
    },
    "prepare": {
        "--input": "raw/movies.jsonl",
        "--train": "prepared/train.parquet",
        "--test": "prepared/test.parquet",
        "--report": "prepared/validation.json",
    },
    "train": {"--train": "prepared/train.parquet", "--model": "models/model.skops"},
    "backtest": {
        "--model": "models/model.skops",
        "--train": "prepared/train.parquet",
        "--test": "prepared/test.parquet",
        "--output": "models/backtest.json",
    },
    "evaluate": {
        "--model": "models/model.skops",
        "--test": "prepared/test.parquet",
        "--backtest": "models/backtest_in.json",
        "--validation": "prepared/validation.json",
        "--metrics": "models/metrics.json",
        "--plots": "models/plots",
        "--card": "models/model_card.md",
    },
}


def _run(
    ws: Path, stage: str, overrides: dict[str, str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    args = {"--params": "params.yaml", **COMMANDS[stage], **overrides}
    cmd = [sys.executable, "-m", f"stages.{stage}"]
    for flag, value in args.items():
        cmd += [flag, value]
    child = tool_env({"PUSHGATEWAY_URL": ""})
    child.pop("TMDB_API_TOKEN", None)
    child.pop("TMDB_API_KEY", None)
    child.update(env or {})
    return subprocess.run(cmd, cwd=ws, env=child, capture_output=True, text=True, timeout=300)


def snapshot(ws: Path) -> dict[str, str]:
    """sha256 of every output file of the workspace (not the hostile inputs)."""
    out = {}
    for sub in ("collected", "prepared", "models"):
        for p in sorted((ws / sub).rglob("*")):
            if p.is_file():
                out[str(p.relative_to(ws))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def temp_files(ws: Path) -> list[str]:
    return sorted(
        str(p.relative_to(ws))
        for p in ws.rglob("*")
        if p.name.startswith(".staging-") or (p.name.startswith(".") and p.name.endswith(".tmp"))
    )


# ---- hostile inputs ---------------------------------------------------------------------------


def params_edit(section: str, key: str, value: Any) -> Setup:
    def setup(ws: Path, h: Path) -> dict[str, str]:
        data = yaml.safe_load((ws / "params.yaml").read_text())
        data[section][key] = value
        (h / "params.yaml").write_text(yaml.safe_dump(data))
        return {"--params": str(h / "params.yaml")}

    return setup


def file_input(flag: str, content: bytes | Callable[[Path], bytes], name: str = "in") -> Setup:
    def setup(ws: Path, h: Path) -> dict[str, str]:
        data = content(ws) if callable(content) else content
        (h / name).write_bytes(data)
        return {flag: str(h / name)}

    return setup


def missing(flag: str) -> Setup:
    return lambda ws, h: {flag: str(h / "does-not-exist")}


def directory(flag: str) -> Setup:
    return lambda ws, h: {flag: str(h)}


def output_under_a_file(flag: str) -> Setup:
    def setup(ws: Path, h: Path) -> dict[str, str]:
        (h / "afile").write_bytes(b"x")
        return {flag: str(h / "afile" / "out")}

    return setup


def cut_utf8(ws: Path) -> bytes:
    data = (ws / "raw" / "movies.jsonl").read_bytes()
    cut = data.index("é".encode()) + 1  # inside the two-byte character
    return data[:cut] + data[cut + 1 :]


def half(rel: str) -> Callable[[Path], bytes]:
    def content(ws: Path) -> bytes:
        data = (ws / rel).read_bytes()
        return data[: len(data) // 2]

    return content


def zip_of(members: dict[str, bytes], corrupt: str | None = None) -> bytes:
    """A zip of `members`; with `corrupt`, one byte of that member's compressed data flipped."""
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    raw = bytearray(buf.getvalue())
    if corrupt is not None:
        with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
            info = zf.getinfo(corrupt)
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        raw[start + info.compress_size // 2] ^= 0xFF
    return bytes(raw)


def lying_sizes(members: dict[str, bytes], declared: int = 100) -> bytes:
    """A zip whose directory declares every member `declared` bytes, whatever it unpacks to:
    zipfile stops at the declared size and the CRC then fails (a bomb that lies is refused)."""
    import struct

    raw = bytearray(zip_of(members))
    for sig, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (i := raw.find(sig, start)) != -1:
            raw[i + at : i + at + 4] = struct.pack("<I", declared)
            start = i + 4
    return bytes(raw)


NPY = b"\x93NUMPY" + bytes(range(256)) * 64
SCHEMA = b'{"__class__": "dict", "__module__": "builtins", "content": {}, "protocol": 2}'


def sparse_model(ws: Path, h: Path) -> dict[str, str]:
    path = h / "huge.skops"
    with open(path, "wb") as fh:
        fh.truncate(300 * 1024 * 1024)  # a sparse 300 MB file: over the archive cap
    return {"--model": str(path)}


def tmdb_params(**collect: Any) -> Setup:
    def setup(ws: Path, h: Path) -> dict[str, str]:
        data = yaml.safe_load((ws / "params.yaml").read_text())
        data["collect"].update(
            source="tmdb",
            release_date_gte="2000-01-01",
            release_date_lte="2000-12-31",
            rate_limit=500,
            max_retries=0,
            timeout_s=2.0,
            **collect,
        )
        (h / "params.yaml").write_text(yaml.safe_dump(data))
        return {"--params": str(h / "params.yaml"), "--cache": str(h / "cache")}

    return setup


@dataclass(frozen=True)
class Row:
    id: str
    stage: str
    setup: Setup
    message: str  # a regex the one stderr line must match
    code: int = 2
    env: dict[str, str] = field(default_factory=dict)
    tmdb_500: bool = False  # run against a fake TMDB whose every detail request answers 500


def _param_rows() -> list[Row]:
    cases: list[tuple[str, str, str, Any, str]] = [
        ("prepare", "prepare", "roi_threshold", -1.0, "must be greater than 0, got -1.0"),
        ("prepare", "prepare", "roi_threshold", 0, "must be greater than 0, got 0.0"),
        ("prepare", "prepare", "roi_threshold", float("nan"), "must be a finite number, got nan"),
        ("prepare", "prepare", "roi_threshold", float("inf"), "must be a finite number, got inf"),
        ("prepare", "prepare", "roi_threshold", "two", "must be a number, got 'two'"),
        ("prepare", "prepare", "min_budget", -1, "must be greater than or equal to 0"),
        ("prepare", "prepare", "min_revenue", -1, "must be greater than or equal to 0"),
        ("prepare", "prepare", "maturity_days", -1, "must be greater than or equal to 0"),
        ("prepare", "prepare", "test_years", 0, "must be greater than or equal to 1"),
        ("prepare", "collect", "release_date_lte", "2011-13-45", "must be a date YYYY-MM-DD"),
        ("train", "train", "learning_rate", -0.1, "must be greater than 0, got -0.1"),
        ("train", "train", "learning_rate", float("nan"), "must be a finite number"),
        ("train", "train", "max_iter", 0, "must be greater than or equal to 1, got 0"),
        ("train", "train", "max_leaf_nodes", 1, "must be greater than or equal to 2, got 1"),
        ("train", "train", "min_samples_leaf", 0, "must be greater than or equal to 1"),
        ("train", "train", "l2_regularization", -1.0, "must be greater than or equal to 0"),
        ("train", "train", "top_k_categories", -1, "must be greater than or equal to 1"),
        ("train", "train", "top_k_categories", 100_000, "must be less than or equal to 1000"),
        ("train", "train", "min_category_count", 0, "must be greater than or equal to 1"),
        ("train", "train", "prior_strength", -5.0, "must be greater than or equal to 0"),
        ("train", "train", "budget_years", 0, "must be greater than or equal to 1"),
        ("train", "train", "threshold_years", 0, "must be greater than or equal to 1"),
        ("train", "train", "seed", -1, "must be greater than or equal to 0"),
        ("train", "train", "max_iter", 2.5, "must be an integer, got 2.5"),
        ("backtest", "backtest", "years", 0, "must be greater than or equal to 1"),
        ("evaluate", "evaluate", "seed", -1, "must be greater than or equal to 0"),
        ("evaluate", "evaluate", "bootstrap_rounds", 0, "must be greater than or equal to 1"),
        ("evaluate", "evaluate", "permutation_repeats", 0, "must be greater than or equal to 1"),
        ("evaluate", "evaluate", "calibration_bins", 1, "must be greater than or equal to 2"),
        ("evaluate", "evaluate", "top_features", 0, "must be greater than or equal to 1"),
        ("collect", "collect", "rate_limit", 0, "must be greater than 0"),
        ("collect", "collect", "rate_limit", -1, "must be greater than 0"),
        ("collect", "collect", "concurrency", 0, "must be greater than or equal to 1"),
        ("collect", "collect", "max_retries", -1, "must be greater than or equal to 0"),
        ("collect", "collect", "timeout_s", 0, "must be greater than 0"),
        ("collect", "collect", "timeout_s", float("inf"), "must be a finite number"),
        ("collect", "collect", "release_date_gte", "2013-01-01", "must be on or before"),
        ("collect", "collect", "release_date_gte", "yesterday", "must be a date YYYY-MM-DD"),
        ("collect", "collect", "source", "imdb", "use one of 'sample', 'tmdb'"),
    ]
    return [
        Row(
            f"{stage}-{section}.{key}={value!r}",
            stage,
            params_edit(section, key, value),
            (
                rf"params\.yaml: key '{re.escape(section)}\.{key}' .*{re.escape(msg)}.*; fix it"
                if "use one of" not in msg
                and "an integer" not in msg
                and "a number," not in msg
                and "date" not in msg
                else rf"params\.yaml: key '{re.escape(section)}\.{key}' .*{re.escape(msg)}"
            ),
        )
        for stage, section, key, value, msg in cases
    ]


ROWS: list[Row] = [
    *_param_rows(),
    # params.yaml itself
    Row("params-missing", "prepare", missing("--params"), r"does-not-exist: file not found"),
    Row("params-directory", "prepare", directory("--params"), r"is a directory"),
    Row(
        "params-not-utf8",
        "prepare",
        file_input("--params", b"prepare:\n  roi_threshold: 2\xff\n", "params.yaml"),
        r"params\.yaml: not valid UTF-8 at byte offset 27",
    ),
    Row(
        "params-bad-yaml",
        "prepare",
        file_input("--params", b"prepare: [\n", "params.yaml"),
        r"not valid YAML at line 2",
    ),
    # prepare's input
    Row("jsonl-missing", "prepare", missing("--input"), r"not found; run the collect stage"),
    Row("jsonl-directory", "prepare", directory("--input"), r"is a directory, not a JSONL file"),
    Row(
        "jsonl-cut-utf8",
        "prepare",
        file_input("--input", cut_utf8),
        r"in: line 2 is not valid UTF-8 at byte offset \d+",
    ),
    Row(
        "jsonl-bad-json",
        "prepare",
        file_input("--input", b'{"id": 1,\n'),
        r"line 1 is not valid JSON \(.*byte offset \d+\)",
    ),
    Row(
        "jsonl-is-gzip",
        "prepare",
        file_input("--input", gzip.compress(b"x" * 100)),
        r"line 1 is not valid UTF-8 at byte offset \d+",
    ),
    Row("jsonl-empty", "prepare", file_input("--input", b""), r"no rows left after cleaning"),
    Row(
        "output-under-a-file",
        "prepare",
        output_under_a_file("--report"),
        r"afile.*Not a directory; a part of the path is a file",
    ),
    # train's input
    Row("parquet-missing", "train", missing("--train"), r"does-not-exist: not found"),
    Row("parquet-directory", "train", directory("--train"), r"is a directory, not a Parquet"),
    Row(
        "parquet-garbage",
        "train",
        file_input("--train", b"not parquet at all"),
        r"in: not a readable Parquet file",
    ),
    Row(
        "parquet-truncated",
        "train",
        file_input("--train", half("prepared/train.parquet")),
        r"in: not a readable Parquet file",
    ),
    # collect's sample
    Row("sample-missing", "collect", missing("--sample"), r"sample file not found"),
    Row("sample-directory", "collect", directory("--sample"), r"is a directory"),
    Row(
        "sample-bad-gzip",
        "collect",
        file_input("--sample", b"\x1f\x8b" + b"garbage" * 10),
        r"cannot be decompressed",
    ),
    Row(
        "sample-truncated-gzip",
        "collect",
        file_input("--sample", SAMPLE.read_bytes()[:5000]),
        r"cannot be decompressed",
    ),
    # evaluate's JSON inputs
    Row(
        "json-cut",
        "evaluate",
        file_input("--backtest", b'{"by_year": {'),
        r"in: not valid JSON \(.*line 1, byte offset 13\)",
    ),
    Row(
        "json-not-utf8",
        "evaluate",
        file_input("--validation", b'{"a": "\xe9"}'),
        r"in: not valid UTF-8 at byte offset 7",
    ),
    # model archives (backtest loads the model after its params)
    Row("model-missing", "backtest", missing("--model"), r"model not found"),
    Row("model-directory", "backtest", directory("--model"), r"is a directory, not a model file"),
    Row(
        "model-not-a-zip",
        "backtest",
        file_input("--model", b"previous model bytes"),
        r"not a readable skops model \(File is not a zip file\)",
    ),
    Row("model-over-archive-cap", "backtest", sparse_model, r"over the \d+-byte cap"),
    Row(
        "model-corrupt-member",
        "backtest",
        file_input("--model", zip_of({"schema.json": SCHEMA, "0.npy": NPY}, corrupt="0.npy")),
        r"member '0\.npy' is corrupt",
    ),
    Row(
        "model-lying-sizes",
        "backtest",
        file_input("--model", lying_sizes({"schema.json": SCHEMA, "0.npy": bytes(10_000_000)})),
        r"member '.*' is corrupt \(Bad CRC-32",
    ),
    Row(
        "model-not-a-model",
        "backtest",
        file_input("--model", zip_of({"schema.json": SCHEMA})),
        r"not a (readable skops model|model written by the train stage)",
    ),
    Row(
        "model-bad-schema",
        "backtest",
        file_input("--model", zip_of({"schema.json": b"{not json"})),
        r"not a readable skops model",
    ),
    # the TMDB collector
    Row(
        "tmdb-base-url-notaurl",
        "collect",
        tmdb_params(),
        r"TMDB_API_BASE_URL 'notaurl' is not an http\(s\) URL",
        env={"TMDB_API_BASE_URL": "notaurl", "TMDB_API_TOKEN": SECRET},
    ),
    Row(
        "tmdb-base-url-bad-port",
        "collect",
        tmdb_params(),
        r"TMDB_API_BASE_URL 'http://localhost:99999/3' is not",
        env={"TMDB_API_BASE_URL": "http://localhost:99999/3", "TMDB_API_TOKEN": SECRET},
    ),
    Row(
        "tmdb-all-details-500",
        "collect",
        tmdb_params(),
        r"\d+ of \d+ detail requests failed \(http_500 \d+\), more than 50%",
        tmdb_500=True,
    ),
]


@pytest.fixture
def tmdb_500() -> Iterator[FakeTmdb]:
    with FakeTmdb(make_catalog(40, "2000-01-01", "2000-12-31"), SECRET) as server:
        server.faults.p_500 = 1.0  # every detail request; discover still answers
        yield server


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_hostile_input_is_one_line_and_loses_nothing(
    row: Row, ws: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    before = snapshot(ws)
    overrides = row.setup(ws, tmp_path)
    env = dict(row.env)
    if row.tmdb_500:
        server: FakeTmdb = request.getfixturevalue("tmdb_500")
        env.update(TMDB_API_BASE_URL=server.url, TMDB_API_TOKEN=SECRET)
    proc = _run(ws, row.stage, overrides, env)
    lines = proc.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert proc.returncode == row.code, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(errors) == 1, proc.stderr
    assert errors[0] == lines[-1], proc.stderr
    # Only log lines (timestamped) besides the one error line.
    assert all(re.match(r"\d{4}-\d\d-\d\d ", line) for line in lines[:-1]), proc.stderr
    assert re.search(row.message, errors[0]), errors[0]
    if os.environ.get("ERRORS_TABLE"):  # the attack table of the report: id, code, line
        with open(os.environ["ERRORS_TABLE"], "a", encoding="utf-8") as fh:
            fh.write(f"{row.id}\t{proc.returncode}\t{errors[0]}\n")
    assert snapshot(ws) == before
    assert temp_files(ws) == []
    assert temp_files(tmp_path) == []


# ---- the zip bomb: refused from the zip directory, bounded memory -----------------------------

BOMB_BYTES = 1536 * 1024 * 1024  # 1.5 GiB of zeros, about 1.5 MB compressed


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.skops"
    chunk = bytes(4 * 1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("schema.json", SCHEMA)
        with zf.open("0.npy", "w", force_zip64=True) as member:
            for _ in range(BOMB_BYTES // len(chunk)):
                member.write(chunk)
    return path


def test_zip_bomb_is_refused_before_decompression(ws: Path, zip_bomb: Path) -> None:
    assert zip_bomb.stat().st_size < 3 * 1024 * 1024
    before = snapshot(ws)
    args = {"--params": "params.yaml", **COMMANDS["backtest"], "--model": str(zip_bomb)}
    cmd = [sys.executable, "-m", "stages.backtest"] + [x for kv in args.items() for x in kv]
    # Measured from a small parent: a child forked from this (large) test process would count
    # the test process's pages in its ru_maxrss until it execs.
    wrapper = (
        "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, *cmd],
        cwd=ws,
        env=tool_env(),
        capture_output=True,
        text=True,
    )
    stderr = proc.stderr
    peak_mb = int(proc.stdout.split()[-1]) / 1024
    print(f"zip bomb: peak RSS {peak_mb:.0f} MB, stderr {stderr.strip()!r}")
    assert proc.returncode == 2, stderr
    assert "Traceback" not in stderr
    assert re.search(r"member '0\.npy' unpacks to \d+ bytes, over the \d+-byte cap", stderr)
    assert peak_mb < 400  # the process's own imports; nothing of the 1.5 GB
    assert snapshot(ws) == before


# ---- the boundary: expected failure classes vs genuine bugs -----------------------------------

BOUNDARY = """
import errno, json, sys
from stages.core.cli import run

def main(argv):
    kind = sys.argv[1]
    if kind == "bug":
        return None.missing_attribute  # a programming error
    if kind == "enospc":
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out.parquet")
    if kind == "eacces":
        raise PermissionError(errno.EACCES, "Permission denied", "/data/in.jsonl")
    if kind == "utf8":
        b"ok \\xe9 no".decode("utf-8")
    if kind == "json":
        json.loads('{"a": 1,\\n  "b": }')
    if kind == "pydantic":
        from pydantic import BaseModel
        class P(BaseModel):
            rate: float
        P(rate="fast")
    if kind == "valueerror":
        raise ValueError("a library refused something we passed: a bug")
    return 0

raise SystemExit(run(main, push_metrics=False))
"""

BOUNDARY_ROWS = [
    ("bug", 1, r"AttributeError"),
    ("valueerror", 1, r"ValueError: a library refused"),
    ("enospc", 2, r"^error: /data/out\.parquet: No space left on device; the disk is full"),
    ("eacces", 2, r"^error: /data/in\.jsonl: Permission denied; check its permissions$"),
    ("utf8", 2, r"^error: input is not valid utf-8 at byte offset 3"),
    ("json", 2, r"^error: not valid JSON at line 2, column 8 \(byte offset 16\)"),
    ("pydantic", 2, r"^error: key 'rate' Input should be a valid number"),
]


@pytest.mark.parametrize(
    ("kind", "code", "message"), BOUNDARY_ROWS, ids=[r[0] for r in BOUNDARY_ROWS]
)
def test_boundary_separates_expected_failures_from_bugs(
    tmp_path: Path, kind: str, code: int, message: str
) -> None:
    script = tmp_path / "entry.py"
    script.write_text(BOUNDARY)
    proc = subprocess.run(
        [sys.executable, str(script), kind], env=tool_env(), capture_output=True, text=True
    )
    assert proc.returncode == code, proc.stderr
    if code == 1:
        assert "Traceback (most recent call last)" in proc.stderr
        assert re.search(message, proc.stderr)
    else:
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.splitlines()) == 1, proc.stderr
        assert re.search(message, proc.stderr.strip()), proc.stderr


def test_a_real_command_with_a_corrupt_input_is_exit_2_a_bug_exit_1(
    ws: Path, tmp_path: Path
) -> None:
    """The same command: a corrupt input is the user's (2, one line), a bug is ours (1)."""
    corrupt = tmp_path / "movies.jsonl"
    corrupt.write_bytes(b'{"title": "caf\xc3')
    proc = _run(ws, "prepare", {"--input": str(corrupt)})
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    # A bug inside the same stage (simulated by breaking a function it calls): exit 1.
    shim = tmp_path / "shim.py"
    shim.write_text(
        "import runpy, sys\n"
        "import stages.prepare as p\n"
        "def broken(*a, **k):\n"
        "    return None.records  # AttributeError: our code's bug\n"
        "p.read_records = broken\n"
        "from stages.core.cli import run\n"
        "raise SystemExit(run(p.main, sys.argv[1:], push_metrics=False))\n"
    )
    args = {"--params": "params.yaml", **COMMANDS["prepare"]}
    proc = subprocess.run(
        [sys.executable, str(shim)] + [x for kv in args.items() for x in kv],
        cwd=ws,
        env=tool_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert "AttributeError" in proc.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_input_is_one_line(ws: Path, tmp_path: Path) -> None:
    path = tmp_path / "movies.jsonl"
    path.write_bytes((ws / "raw" / "movies.jsonl").read_bytes())
    path.chmod(0)
    before = snapshot(ws)
    proc = _run(ws, "prepare", {"--input": str(path)})
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "permission denied" in proc.stderr.splitlines()[-1]
    assert snapshot(ws) == before
