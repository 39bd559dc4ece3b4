"""The `report` command on real git + DVC repositories."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from stages.compare.flat import flatten
from tests.conftest import mini_commit
from tests.support import sh


def report(
    repo: Path, base: str, out: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return sh("python", "-m", "stages.report", "--base", base, "--out", out, cwd=repo, check=check)


def report_md(repo: Path, base: str, out: Path) -> str:
    report(repo, base, out)
    return (out / "report.md").read_text()


@pytest.mark.e2e
def test_report_commands_on_two_commit_repos(mini_repo: Path, tmp_path: Path) -> None:
    # base without metrics: main has params only
    sh("git", "checkout", "-q", "-b", "feature", cwd=mini_repo)
    mini_commit(mini_repo, 0.70, "add the pipeline")
    md = report_md(mini_repo, "main", tmp_path / "r0")
    assert "The base has no metrics yet" in md
    assert "| `backtest.mean.roc_auc` | — | 0.69 |  | new |" in md
    assert (tmp_path / "r0/head_roc.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "r0/base_roc.png").exists()

    # improvement: base = the previous commit, read through DVC from the cache
    sh("git", "branch", "-f", "base1", "HEAD", cwd=mini_repo)
    mini_commit(mini_repo, 0.80, "better model")
    out = tmp_path / "r1"
    t0 = time.perf_counter()
    report(mini_repo, "base1", out)
    assert time.perf_counter() - t0 < 10
    md = (out / "report.md").read_text()
    assert "| `roc_auc` | 0.7 | 0.8 | +0.1 | 🟢 better |" in md
    assert "| `log_loss` | 0.3 | 0.2 | -0.1 | 🟢 better |" in md
    assert "| `train.quality` | 0.7 | 0.8 |" in md
    assert "![head roc.png](head_roc.png)" in md
    assert "![base roc.png](base_roc.png)" in md
    assert (out / "head_roc.png").read_bytes() != (out / "base_roc.png").read_bytes()
    assert "quality 0.8" in (out / "model_card.md").read_text()

    # regression
    sh("git", "branch", "-f", "base2", "HEAD", cwd=mini_repo)
    mini_commit(mini_repo, 0.60, "worse model")
    md = report_md(mini_repo, "base2", tmp_path / "r2")
    assert "| `roc_auc` | 0.8 | 0.6 | -0.2 | 🔴 worse |" in md
    assert "| `log_loss` | 0.2 | 0.4 | +0.2 | 🔴 worse |" in md

    # no change: head equals base
    md = report_md(mini_repo, "HEAD", tmp_path / "r3")
    assert "**No change** against base `HEAD`" in md
    assert "| metric |" not in md

    # a shallow clone of the feature branch: main is unknown, fetched once from origin
    clone = tmp_path / "shallow"
    sh(
        "git",
        "clone",
        "-q",
        "--depth=1",
        "--single-branch",
        "--branch",
        "feature",
        f"file://{mini_repo}",
        str(clone),
        cwd=tmp_path,
    )
    sh("dvc", "cache", "dir", "--local", str(mini_repo / ".dvc" / "cache"), cwd=clone)
    sh("dvc", "checkout", "-q", cwd=clone)
    assert (
        sh(
            "git", "rev-parse", "--verify", "--quiet", "base2^{commit}", cwd=clone, check=False
        ).returncode
        != 0
    )
    md = report_md(clone, "base2", tmp_path / "r4")
    assert "| `roc_auc` | 0.8 | 0.6 | -0.2 | 🔴 worse |" in md

    # ... and without a way to fetch it: one line with the fix
    shutil.rmtree(tmp_path / "r4")
    sh("git", "remote", "remove", "origin", cwd=clone)
    proc = report(clone, "base1", tmp_path / "r4", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: base revision 'base1' is not in this clone (shallow?) and could not be fetched; "
        "run `git fetch --depth=1 origin base1` (or check out with fetch-depth: 0)"
    )
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r4").exists()


@pytest.mark.e2e
def test_report_on_the_real_pipeline_without_change(
    reproduced_project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    report(reproduced_project, "main", out)
    md = (out / "report.md").read_text()
    assert "**No change** against base `main`" in md
    assert "Plots are not available" in md or "head_" in md
    metrics = json.loads((reproduced_project / "models/metrics.json").read_text())
    assert f"No change in any of the {len(flatten(metrics))} metrics." in md
    assert (out / "model_card.md").read_text().startswith("# Model card")
