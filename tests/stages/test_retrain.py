"""The `retrain` command on real git + DVC repositories with real models.

The fixture repository runs the real `prepare` and `train` stages. Its `collect` stage stands
in for TMDB (`collect.source: tmdb`, so the retrain accepts it): it lists the fixture films
released up to `collect.release_date_lte`, and from a set day on it serves "bad data", the
success pattern of the older films reversed, so a retrain then builds a worse model.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stages.compare.gate import EXIT_COMMIT, EXIT_FAILED, EXIT_GATED, EXIT_NOTHING
from tests.conftest import make_record
from tests.support import ROOT, sh

BASE_DATE = "2010-12-31"  # test 2005-2009, train 1995-2004
GOOD_DATE = "2011-12-31"  # test 2006-2009 (+2010, no films), train 1995-2005
BAD_DATE = "2012-06-30"  # same split as GOOD_DATE, reversed labels before 2006
DOWN_DATE = "2013-01-01"  # the stand-in fails, as TMDB down would

STAND_IN = f"""\
import json, sys
from pathlib import Path

import yaml

lte = str(yaml.safe_load(Path("params.yaml").read_text())["collect"]["release_date_lte"])
if lte >= "{DOWN_DATE}":
    sys.exit("TMDB is down (test stand-in)")
films = [f for f in json.loads(Path("films.json").read_text()) if f["release_date"] <= lte]
if lte >= "{BAD_DATE}":
    for f in films:
        if f["release_date"] < "2006":
            f["revenue"] = f["budget"] * (3 if f["revenue"] < 2 * f["budget"] else 1)
Path("data/raw").mkdir(parents=True, exist_ok=True)
with open("data/raw/movies.jsonl", "w") as fh:
    fh.writelines(json.dumps(f, sort_keys=True) + "\\n" for f in films)
"""

DVC_YAML = """\
stages:
  collect:
    cmd: python tmdb_stand_in.py
    deps: [tmdb_stand_in.py, films.json]
    params: [collect.release_date_lte]
    outs: [data/raw/movies.jsonl]
  prepare:
    cmd: >-
      python -m stages.prepare --input data/raw/movies.jsonl
      --train data/prepared/train.parquet --test data/prepared/test.parquet
      --report data/prepared/validation.json
    deps: [data/raw/movies.jsonl]
    params: [prepare, collect.release_date_lte]
    outs: [data/prepared/train.parquet, data/prepared/test.parquet,
           data/prepared/validation.json]
  train:
    cmd: python -m stages.train --train data/prepared/train.parquet --model models/model.skops
    deps: [data/prepared/train.parquet]
    params: [train]
    outs: [models/model.skops]
"""

PARAMS = f"""\
collect:
  source: tmdb
  release_date_lte: "{BASE_DATE}"  # the snapshot
prepare:
  roi_threshold: 2.0
  min_budget: 10000
  min_revenue: 1000
  maturity_days: 365
  test_years: 5
train:
  seed: 7
  learning_rate: 0.1
  max_iter: 20
  max_leaf_nodes: 7
  min_samples_leaf: 5
  l2_regularization: 0.0
  top_k_categories: 5
  min_category_count: 2
  prior_strength: 5.0
  budget_years: 3
  threshold_years: 2
evaluate:
  seed: 11
  bootstrap_rounds: 200
retrain:
  guarded_metrics: [roc_auc, pr_auc, log_loss, brier]
  tolerance: 0.05
"""


def film(i: int) -> dict[str, Any]:
    """A fixture film whose success follows its genre (Action mostly succeeds, Drama mostly
    flops): a signal a small model learns, so reversing it makes a clearly worse model."""
    rec = make_record(i)
    genre = i % 3  # make_record: 0 Drama, 1 Comedy, 2 Action
    hit = (i * 7919 % 10) < (1, 5, 9)[genre]
    rec["revenue"] = rec["budget"] * (3 if hit else 1)
    return rec


@pytest.fixture(scope="session")
def tmdb_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git + DVC repo on main whose pipeline ran once at BASE_DATE, committed: the base."""
    repo = tmp_path_factory.mktemp("retrain") / "repo"
    repo.mkdir()
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    sh("dvc", "init", "-q", cwd=repo)
    sh("dvc", "config", "core.analytics", "false", cwd=repo)
    (repo / "films.json").write_text(json.dumps([film(i) for i in range(1, 901)]))
    (repo / "tmdb_stand_in.py").write_text(STAND_IN)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "params.yaml").write_text(PARAMS)
    sh("dvc", "repro", "-q", cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-q", "-m", "base: data up to 2010-12-31", cwd=repo)
    return repo


@pytest.fixture
def repo(tmdb_project: Path, tmp_path: Path) -> Path:
    """A copy of the base repo for one test (git history and DVC cache included)."""
    dest = tmp_path / "repo"
    shutil.copytree(tmdb_project, dest, symlinks=True)
    return dest


def retrain(repo: Path, out: Path, date: str) -> subprocess.CompletedProcess[str]:
    return sh(
        "python", "-m", "stages.retrain", "--date", date, "--base", "main", "--out", out,
        cwd=repo, check=False,
    )  # fmt: skip


def decision(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "decision.json").read_text())
    return data


def errors(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The command's stderr without log lines: what a user error prints."""
    return [ln for ln in proc.stderr.splitlines() if not re.match(r"\d{4}-\d\d-\d\d ", ln)]


def base_sha(repo: Path) -> str:
    return sh("git", "rev-parse", "--short", "main", cwd=repo).stdout.strip()


def assert_untouched(repo: Path) -> None:
    assert sh("git", "status", "--porcelain", cwd=repo).stdout == ""


@pytest.mark.e2e
def test_better_or_equal_model_passes_the_gate(repo: Path, tmp_path: Path) -> None:
    proc = retrain(repo, tmp_path / "out", GOOD_DATE)
    assert proc.returncode == EXIT_COMMIT, proc.stderr
    d = decision(tmp_path / "out")
    assert (d["action"], d["reasons"]) == ("commit", [])
    assert [g["metric"] for g in d["guarded"]] == ["roc_auc", "pr_auc", "log_loss", "brier"]
    assert sh("git", "status", "--porcelain", cwd=repo).stdout.split() == [
        "M",
        "dvc.lock",
        "M",
        "params.yaml",
    ]


@pytest.mark.e2e
def test_both_models_are_scored_on_the_new_test_films(repo: Path, tmp_path: Path) -> None:
    retrain(repo, tmp_path / "out", GOOD_DATE)
    same = decision(tmp_path / "out")["same_rows"]
    validation = json.loads((repo / "data/prepared/validation.json").read_text())
    assert validation["test"]["first_release"] >= "2006-01-01"  # the new split, not the base's
    assert same["rows"] == validation["test"]["rows"]
    assert (same["rounds"], same["seed"]) == (200, 11)  # evaluate.bootstrap_rounds and seed
    auc = next(m for m in same["metrics"] if m["metric"] == "roc_auc")
    assert auc["base"] != auc["head"]  # two different models
    assert auc["lo"] <= auc["difference"] <= auc["hi"]
    md = (tmp_path / "out" / "decision.md").read_text()
    assert f"the same {same['rows']} test films of the new snapshot" in md


@pytest.mark.e2e
def test_worse_model_is_gated(repo: Path, tmp_path: Path) -> None:
    proc = retrain(repo, tmp_path / "out", BAD_DATE)
    assert proc.returncode == EXIT_GATED, proc.stderr
    d = decision(tmp_path / "out")
    assert d["action"] == "review"
    assert d["reasons"][0].startswith("roc_auc of the new model is worse by ")
    auc = next(m for m in d["same_rows"]["metrics"] if m["metric"] == "roc_auc")
    assert auc["hi"] < -0.05  # clearly worse: the whole interval beyond the tolerance
    assert (
        (tmp_path / "out" / "decision.md")
        .read_text()
        .startswith(f"# Retrain on data up to {BAD_DATE}: gated: open for review\n")
    )


@pytest.mark.e2e
def test_same_date_is_nothing_to_do(repo: Path, tmp_path: Path) -> None:
    proc = retrain(repo, tmp_path / "out", BASE_DATE)
    assert proc.returncode == EXIT_NOTHING, proc.stderr
    assert decision(tmp_path / "out")["reasons"] == [
        "the repro left dvc.lock identical to the base's"
    ]
    assert_untouched(repo)


@pytest.mark.e2e
def test_same_model_is_nothing_to_do(repo: Path, tmp_path: Path) -> None:
    # One day later: the same films and the same split, so train reproduces the same model.
    proc = retrain(repo, tmp_path / "out", "2011-01-01")
    assert proc.returncode == EXIT_NOTHING, proc.stderr
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    md5 = lock["stages"]["train"]["outs"][0]["md5"]
    assert decision(tmp_path / "out")["reasons"] == [
        f"the new models/model.skops is the base's (md5 {md5})"
    ]


@pytest.mark.e2e
def test_failed_repro_is_reported(repo: Path, tmp_path: Path) -> None:
    proc = retrain(repo, tmp_path / "out", DOWN_DATE)
    assert proc.returncode == EXIT_FAILED
    assert decision(tmp_path / "out")["reasons"] == ["`dvc repro` exited 255"]


@pytest.mark.e2e
def test_date_before_the_base_snapshot_is_refused(repo: Path, tmp_path: Path) -> None:
    proc = retrain(repo, tmp_path / "out", "2010-06-30")
    assert proc.returncode == 2
    assert errors(proc) == [
        "error: --date 2010-06-30 is before the base's snapshot (collect.release_date_lte "
        f"2010-12-31 at `main` ({base_sha(repo)})); a retrain moves the snapshot forward"
    ]
    assert_untouched(repo)
    assert not (tmp_path / "out").exists()


@pytest.mark.e2e
def test_base_without_a_model_is_refused(repo: Path, tmp_path: Path) -> None:
    sh("git", "rm", "-q", "dvc.lock", cwd=repo)
    sh("git", "commit", "-q", "-m", "no lock", cwd=repo)
    proc = retrain(repo, tmp_path / "out", GOOD_DATE)
    assert proc.returncode == 2
    assert errors(proc) == [
        f"error: base `main` ({base_sha(repo)}) has no model: models/model.skops is not in its "
        "dvc.lock; reproduce and push it there first (`dvc repro`, `dvc push`)"
    ]
    assert_untouched(repo)


@pytest.mark.e2e
def test_base_model_dvc_cannot_fetch_is_refused(repo: Path, tmp_path: Path) -> None:
    shutil.rmtree(repo / ".dvc" / "cache")  # and there is no remote
    proc = retrain(repo, tmp_path / "out", GOOD_DATE)
    assert proc.returncode == 2
    assert errors(proc) == [
        f"error: base `main` ({base_sha(repo)}): DVC cannot fetch models/model.skops "
        "(FileNotFoundError) from the local cache or the remote; run `dvc push` where it "
        "was built"
    ]
    assert_untouched(repo)


@pytest.mark.e2e
def test_base_model_the_current_code_cannot_load_is_refused(repo: Path, tmp_path: Path) -> None:
    (repo / "models" / "model.skops").write_bytes(b"a model of an older format")
    sh("dvc", "commit", "-q", "-f", "train", cwd=repo)
    sh("git", "commit", "-q", "-am", "an unloadable model", cwd=repo)
    proc = retrain(repo, tmp_path / "out", GOOD_DATE)
    assert proc.returncode == 2
    assert errors(proc) == [
        f"error: base `main` ({base_sha(repo)}): models/model.skops is not loadable by the "
        "current code (not a readable skops model (File is not a zip file)); it must be "
        "rebuilt: `dvc repro` on the base with this code, then `dvc push`"
    ]
    assert_untouched(repo)


@pytest.mark.e2e
def test_sample_source_is_refused(project_repo: Path, tmp_path: Path) -> None:
    proc = retrain(project_repo, tmp_path / "out", GOOD_DATE)
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: params.yaml: collect.source is 'sample', a frozen dataset: retraining on it "
        "changes nothing; set collect.source: tmdb (docs/retrain.md)\n"
    )
    assert_untouched(project_repo)


def test_workflow_retrains_with_pull_and_keeps_the_tmdb_cache() -> None:
    wf = yaml.safe_load((ROOT / ".github/workflows/retrain.yml").read_text())
    steps = wf["jobs"]["retrain"]["steps"]
    run = next(s["run"] for s in steps if s.get("id") == "retrain")
    assert "python -m stages.retrain --pull " in run
    cache_dir = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["collect"]["cmd"]
    cache_dir = cache_dir.split("--cache ", 1)[1].split()[0]
    uses = {s.get("uses", "").split("@")[0]: s for s in steps}
    restore = uses["actions/cache/restore"]["with"]
    save = uses["actions/cache/save"]
    assert restore["path"] == save["with"]["path"] == cache_dir
    assert save["with"]["key"] == restore["key"]
    assert "steps.day.outputs.date" in restore["key"]
    assert restore["restore-keys"].split() == ["tmdb-"]
    assert restore["key"].startswith("tmdb-")
    assert save["if"] == "always()"  # an interrupted first collection resumes next run
    names = [s.get("uses", "").split("@")[0] or s.get("id") for s in steps]
    assert names.index("actions/cache/restore") < names.index("retrain")
    assert names.index("retrain") < names.index("actions/cache/save")
