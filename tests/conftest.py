"""Shared fixtures: small in-code data and real temporary git + DVC repositories."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def tool_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for child processes: our venv first, no analytics, a fixed git identity."""
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        DVC_NO_ANALYTICS="1",
        GIT_AUTHOR_NAME="Test",
        GIT_AUTHOR_EMAIL="test@example.invalid",
        GIT_COMMITTER_NAME="Test",
        GIT_COMMITTER_EMAIL="test@example.invalid",
        GIT_CONFIG_NOSYSTEM="1",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra or {})
    return env


def sh(
    *cmd: str | Path, cwd: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env or tool_env(), capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def project_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files: the project as the developer sees it."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(p for p in out.split("\0") if p and (ROOT / p).is_file())


def copy_project(dest: Path) -> Path:
    for rel in project_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    return dest


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
    from stages.lib.schema import empty_record

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
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real model, trained once per session on fixture records (no dvc repro needed)."""
    import datetime as dt

    from stages.lib.model_io import save_model
    from stages.prepare import PrepareParams, prepare
    from stages.train import TrainParams, train

    split = PrepareParams(2.0, dt.date(2006, 1, 1), dt.date(2011, 12, 31), 10_000)
    df = prepare([make_record(i) for i in range(1, 301)], split).train
    params = TrainParams(
        seed=7,
        learning_rate=0.1,
        max_iter=20,
        max_leaf_nodes=7,
        min_samples_leaf=5,
        l2_regularization=0.0,
        top_k_categories=5,
        min_category_count=2,
        threshold=0.5,
    )
    path = tmp_path_factory.mktemp("model") / "model.skops"
    save_model(path, train(df, params))
    return path
