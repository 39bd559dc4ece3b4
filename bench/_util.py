"""Plumbing shared by the benchmarks, on top of the plain test helpers in tests/support.py."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

from tests.support import ROOT, copy_project
from tests.support import sh as run

__all__ = ["ROOT", "RUNS", "project_copy", "sh", "timed"]

RUNS = int(os.environ.get("BENCH_RUNS", "5"))


def sh(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None) -> float:
    """Run a command, fail loudly, return its wall time in seconds."""
    t0 = time.perf_counter()
    proc = run(*cmd, cwd=cwd, check=False, env=env)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def timed(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall and CPU (user + system of the command and its children) seconds of a command.

    The CPU figure goes beside the wall one: on a shared machine it moves much less.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = sh(*cmd, cwd=cwd, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def project_copy(dest: Path) -> Path:
    """The project as the developer sees it, as a fresh git repository with one commit."""
    copy_project(dest)
    sh("git", "init", "-q", "-b", "main", cwd=dest)
    sh("git", "add", "-A", cwd=dest)
    sh("git", "commit", "-q", "-m", "bench", cwd=dest)
    return dest
