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
    assert "No plots (`dvc plots diff` found none of dvc.yaml's plots)." in md

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
    assert "### ROC" in md
    assert "### Backtest RMSLE by year" in md
    metrics = json.loads((reproduced_project / "models/metrics.json").read_text())
    assert f"No change in any of the {len(flatten(metrics))} metrics." in md
    assert (out / "model_card.md").read_text().startswith("# Model card")


PLOTS_YAML = """\
plots:
  - ROC:
      x: fpr
      y:
        models/plots/roc.csv: tpr
"""


@pytest.mark.e2e
def test_report_plots_are_dvc_plots_diff_rendered(mini_repo: Path, tmp_path: Path) -> None:
    """dvc.yaml's plot, base and head overlaid, as a PNG (vl-convert) and its Vega-Lite spec."""
    from tests.require import need

    stage = mini_repo / "mini_stage.py"
    mini_commit(mini_repo, 0.70, "pipeline")
    extra = (
        '\nrows = ["fpr,tpr"] + [f"{x / 10},{min(1.0, x / 10 + q - 0.5):.3f}" for x in range(11)]'
        '\nPath("models/plots/roc.csv").write_text("\\n".join(rows) + "\\n")\n'
    )
    stage.write_text(stage.read_text() + extra)
    (mini_repo / "dvc.yaml").write_text((mini_repo / "dvc.yaml").read_text() + PLOTS_YAML)
    sh("dvc", "repro", "-q", cwd=mini_repo)
    sh("git", "add", "-A", cwd=mini_repo)
    sh("git", "commit", "-q", "-m", "roc plot", cwd=mini_repo)
    sh("git", "branch", "-f", "base", "HEAD", cwd=mini_repo)
    from tests.conftest import mini_params

    mini_params(mini_repo, 0.85)
    (mini_repo / "mini_stage.py").write_text(stage.read_text())
    sh("dvc", "repro", "-q", cwd=mini_repo)
    out = tmp_path / "r"
    report(mini_repo, "base", out)
    md = (out / "report.md").read_text()
    assert "### ROC" in md
    spec = json.loads((out / "plot_roc.vl.json").read_text())
    revs = {row["rev"] for row in spec["data"]["values"]}
    assert revs == {"workspace", "base"}
    try:
        import vl_convert  # noqa: F401

        have = True
    except ImportError:
        have = False
    need(have, "vl-convert-python is not installed: the report cannot render PNGs")
    assert "![ROC](plot_roc.png)" in md
    assert (out / "plot_roc.png").read_bytes()[:4] == b"\x89PNG"
