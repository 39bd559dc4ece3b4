"""Plumbing shared by the benchmarks: a temporary copy of the project and timed commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("BENCH_RUNS", "5"))


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Our venv first, no analytics, no inherited AWS settings, a fixed git identity."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    e.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{e.get('PATH', '')}",
        DVC_NO_ANALYTICS="1",
        GIT_AUTHOR_NAME="Bench",
        GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="Bench",
        GIT_COMMITTER_EMAIL="bench@example.invalid",
        PYTHONPATH=str(ROOT),
    )
    e.update(extra or {})
    return e


def sh(*cmd: str | Path, cwd: Path, extra_env: dict[str, str] | None = None) -> float:
    """Run a command, fail loudly, return its wall time in seconds."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env(extra_env), capture_output=True, text=True
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def project_copy(dest: Path) -> Path:
    """Tracked and untracked-but-not-ignored files, as a fresh git repository with one commit."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, files):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    sh("git", "init", "-q", "-b", "main", cwd=dest)
    sh("git", "add", "-A", cwd=dest)
    sh("git", "commit", "-q", "-m", "bench", cwd=dest)
    return dest
