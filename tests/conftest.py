"""Shared fixtures: small in-code data and real temporary git + DVC repositories."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support import BIN, ROOT, copy_project, sh, tool_env  # noqa: F401 (tests import them)


def sklearn_raw(estimator: Any, enc: np.ndarray) -> np.ndarray:
    """Raw predictions of a HistGradientBoosting head on an encoded matrix by sklearn's own
    loop over its tree predictors (one OpenMP thread): what the fast path must reproduce."""
    raw = np.zeros((len(enc), estimator.n_trees_per_iteration_), order="F")
    raw += estimator._baseline_prediction
    estimator._predict_iterations(enc, estimator._predictors, raw, False, 1)
    return raw


# What a child process reports of numpy's SIMD dispatch: every extension this CPU has above
# numpy's compiled baseline, and (second line) what is in use after NPY_DISABLE_CPU_FEATURES.
_CPU_PROBE = """
from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
print(" ".join(f for f in __cpu_dispatch__ if __cpu_features__.get(f)))
"""
# The most generic OpenBLAS kernel per architecture (OpenBLAS otherwise picks one by CPU).
_GENERIC_BLAS = {"x86_64": "Prescott", "aarch64": "ARMV8"}


def cpu_extensions(env: dict[str, str] | None = None) -> list[str]:
    """numpy's dispatchable SIMD extensions in use in a child process with `env`."""
    out = subprocess.run(
        [sys.executable, "-c", _CPU_PROBE],
        env=env or tool_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def baseline_cpu_env() -> dict[str, str]:
    """A child environment that computes as the least capable CPU these wheels run on: numpy
    without its dispatched SIMD extensions, OpenBLAS on its generic kernel, glibc's maths
    without its FMA/AVX2 variants. Skips where the CPU has nothing above numpy's baseline."""
    import platform

    extensions = cpu_extensions()
    if not extensions:
        pytest.skip("this CPU has no SIMD extension above numpy's baseline: nothing to disable")
    extra = {"NPY_DISABLE_CPU_FEATURES": " ".join(extensions)}
    machine = platform.machine()
    # A machine that sets OPENBLAS_CORETYPE needs it (older OpenBLAS misdetects some CPUs).
    if "OPENBLAS_CORETYPE" not in os.environ and machine in _GENERIC_BLAS:
        extra["OPENBLAS_CORETYPE"] = _GENERIC_BLAS[machine]
    if machine == "x86_64":
        extra["GLIBC_TUNABLES"] = "glibc.cpu.hwcaps=-AVX512F,-AVX2,-FMA,-FMA4"
    env = tool_env(extra)
    assert cpu_extensions(env) == [], f"NPY_DISABLE_CPU_FEATURES did not take: {extra}"
    return env


@pytest.fixture
def project_repo(tmp_path: Path) -> Path:
    """A fresh git repository holding a copy of this project, committed once."""
    repo = copy_project(tmp_path / "repo")
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-q", "-m", "initial", cwd=repo)
    return repo


def make_record(i: int, **overrides: Any) -> dict[str, Any]:
    """A valid normalized record; years, budgets and outcomes vary with i."""
    from stages.core.schema import empty_record

    rec = empty_record(i, "sample", f"Film {i}")
    year = 1995 + i % 15
    budget = 1_000_000 * (1 + i % 30)
    rec.update(
        original_title=f"Film {i}",
        release_date=f"{year}-{1 + i % 12:02d}-{1 + i % 28:02d}",
        status="Released",
        budget=budget,
        revenue=int(budget * (0.5 + (i * 7919 % 100) / 25)),
        runtime=90 + i % 40,
        genres=[["Drama"], ["Comedy"], ["Action", "Adventure"]][i % 3],
        certification=["R", "PG-13", "PG"][i % 3],
        distributor=["Warner Bros.", "Universal", "Lionsgate", None][i % 4],
        is_sequel=i % 10 == 0,
        director=f"Director {i % 17}",
        source_material="Original Screenplay",
        creative_type="Contemporary Fiction",
        vote_count=100 + i,
        vote_average=6.5,
    )
    rec.update(overrides)
    return rec


@pytest.fixture
def records() -> Callable[..., list[dict[str, Any]]]:
    def build(n: int = 300) -> list[dict[str, Any]]:
        return [make_record(i) for i in range(1, n + 1)]

    return build


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3-protocol server (moto) on loopback with a random free port; yields its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def reproduced_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project in a temp git repo after one `dvc repro`, committed (shared: repro is slow)."""
    repo = copy_project(tmp_path_factory.mktemp("reproduced") / "repo")
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    sh("dvc", "repro", cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-q", "-m", "initial, reproduced", cwd=repo)
    return repo


# A tiny but real DVC pipeline whose outputs follow its params, for report/retrain tests that
# need several commits with different metrics without paying for the real training each time.
MINI_STAGE = """\
import json, struct, sys, zlib
from pathlib import Path

import yaml

p = yaml.safe_load(Path("params.yaml").read_text())
t = p["train"]
if t.get("fail"):
    sys.exit("training failed on purpose")
days = int(p["collect"]["release_date_lte"][:4]) - 2000


def png(shade):
    raw = b"".join(b"\\x00" + bytes([shade, 0, 255 - shade]) * 4 for _ in range(4))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    return (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


Path("models/plots").mkdir(parents=True, exist_ok=True)
Path("data/prepared").mkdir(parents=True, exist_ok=True)
q = t["quality"]
metrics = {"roc_auc": q, "log_loss": round(1 - q, 6), "rows": 100 + days, "threshold": 0.5,
           "backtest": {"mean": {"roc_auc": round(q - 0.01, 6)}}}
Path("models/metrics.json").write_text(json.dumps(metrics, sort_keys=True))
validation = {"passed": t.get("valid", True), "rows_in": 120 + days, "rows_out": 100 + days,
              "dropped": {"missing_budget": 20}, "test": {"rows": 40, "base_rate": 0.5}}
Path("data/prepared/validation.json").write_text(json.dumps(validation, sort_keys=True))
Path("models/plots/roc.png").write_bytes(png(int(q * 255)))
Path("models/model_card.md").write_text(f"# Model card\\n\\nquality {q}\\n")
"""

MINI_DVC_YAML = """\
stages:
  evaluate:
    cmd: python mini_stage.py
    deps: [mini_stage.py]
    params: [collect, train]
    outs: [data/prepared/validation.json, models/plots, models/model_card.md]
    metrics: [models/metrics.json]
"""

MINI_PARAMS = """\
collect:
  source: sample
  release_date_lte: "2010-12-31"   # snapshot end
train:
  quality: {quality}   # the metric this toy stage reports
  valid: {valid}
  fail: {fail}
retrain:
  guarded_metrics: [roc_auc, log_loss]
  tolerance: 0.01
"""


def mini_params(repo: Path, quality: float, valid: bool = True, fail: bool = False) -> None:
    text = MINI_PARAMS.format(quality=quality, valid=str(valid).lower(), fail=str(fail).lower())
    (repo / "params.yaml").write_text(text)


@pytest.fixture
def mini_repo(tmp_path: Path) -> Path:
    """A git + DVC repo on branch main with params.yaml only: a base without metrics."""
    repo = tmp_path / "mini"
    repo.mkdir()
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    sh("dvc", "init", "-q", cwd=repo)
    sh("dvc", "config", "core.analytics", "false", cwd=repo)
    mini_params(repo, 0.7)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-q", "-m", "params only", cwd=repo)
    return repo


def mini_commit(repo: Path, quality: float, message: str, **kw: bool) -> None:
    """Set the params, add the pipeline if missing, `dvc repro` and commit."""
    (repo / "mini_stage.py").write_text(MINI_STAGE)
    (repo / "dvc.yaml").write_text(MINI_DVC_YAML)
    mini_params(repo, quality, **kw)
    sh("dvc", "repro", "-q", cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-q", "-m", message, cwd=repo)


def small_train_params() -> Any:
    """Train params sized for the in-code fixture records: quick, but a real model."""
    from stages.train import TrainParams

    return TrainParams(
        seed=7,
        learning_rate=0.1,
        max_iter=20,
        max_leaf_nodes=7,
        min_samples_leaf=5,
        l2_regularization=0.0,
        top_k_categories=5,
        min_category_count=2,
        prior_strength=5.0,
        budget_years=3,
        threshold_years=3,
    )


# The bundled sample's snapshot (collect.release_date_lte): fixture records end in 2009.
SNAPSHOT = dt.date(2011, 12, 31)


def fixture_split() -> Any:
    """The bundled sample's prepare params: test on 2006-2010, train before."""
    from stages.prepare import PrepareParams

    return PrepareParams(
        roi_threshold=2.0, min_budget=10_000, min_revenue=1_000, maturity_days=365, test_years=5
    )


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real model, trained once per session on fixture records (no dvc repro needed)."""
    from stages.model.artifact import save_model
    from stages.prepare import prepare
    from stages.train import train

    df = prepare([make_record(i) for i in range(1, 301)], fixture_split(), SNAPSHOT).train
    params = dataclasses.replace(small_train_params(), threshold_years=2)
    path = tmp_path_factory.mktemp("model") / "model.skops"
    save_model(path, train(df, params))
    return path
