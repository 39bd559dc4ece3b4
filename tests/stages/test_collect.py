"""The `collect` command: arguments, params, outputs and exit codes (source sample)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, sh
from tests.sources.test_sample import SAMPLE, sample_row


def run_collect(repo: Path, sample: Path, params: Path) -> Any:
    out = repo / "out"
    proc = sh(
        "python",
        "-m",
        "stages.collect",
        "--params",
        params,
        "--sample",
        sample,
        "--output",
        out / "movies.jsonl",
        "--summary",
        out / "summary.json",
        cwd=ROOT,
        check=False,
    )
    return proc, out


def test_cli_bad_sample_exits_2_with_one_line_and_no_output(tmp_path: Path) -> None:
    bad = tmp_path / "movies.json.gz"
    bad.write_bytes(gzip.compress(b"not json"))
    proc, out = run_collect(tmp_path, bad, ROOT / "params.yaml")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {bad}: not valid JSON (line 1, column 1: Expecting value); restore it from git"
    ]
    assert not out.exists() or list(out.iterdir()) == []


def test_cli_unknown_source_is_rejected(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    text = (ROOT / "params.yaml").read_text().replace("source: sample", "source: imdb", 1)
    params.write_text(text)
    proc, out = run_collect(tmp_path, SAMPLE, params)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: {params}: key 'collect.source' is 'imdb'; use one of 'sample', 'tmdb'"
    )
    assert not out.exists()


def test_cli_writes_sorted_jsonl(tmp_path: Path) -> None:
    sample = tmp_path / "movies.json"
    sample.write_text(json.dumps([sample_row(), sample_row(Title="Alien")]))
    proc, out = run_collect(tmp_path, sample, ROOT / "params.yaml")
    assert proc.returncode == 0, proc.stderr
    lines = (out / "movies.jsonl").read_text().splitlines()
    assert [json.loads(x)["title"] for x in lines] == ["Jaws 2", "Alien"]
    assert json.loads((out / "summary.json").read_text()) == {
        "movies": 2,
        "sample": "movies.json",
        "source": "sample",
    }
