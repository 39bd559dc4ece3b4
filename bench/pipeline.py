"""Pipeline timings: full `dvc repro` on the sample, and a no-op repro against `dvc status`.

Runs in a temporary copy of the project so the working tree is untouched.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("BENCH_RUNS", "5"))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def _timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=_env(), check=True, capture_output=True)
    return time.perf_counter() - start


def _copy_project(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for rel in filter(None, files):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"]):
        subprocess.run(cmd, cwd=dest, check=True)
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.invalid",
            "commit",
            "-qm",
            "bench",
        ],
        cwd=dest,
        check=True,
    )


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        _copy_project(repo)
        full = [_timed(["dvc", "repro", "--force"], repo) for _ in range(RUNS)]
        noop = [_timed(["dvc", "repro"], repo) for _ in range(RUNS)]
        status = [_timed(["dvc", "status"], repo) for _ in range(RUNS)]
    m_full, m_noop, m_status = (statistics.median(x) for x in (full, noop, status))
    print(f"full dvc repro --force: median {m_full:.2f} s over {RUNS} runs (target <= 30 s)")
    print(f"no-op dvc repro: median {m_noop:.2f} s; dvc status: median {m_status:.2f} s;")
    print(f"  difference {m_noop - m_status:+.2f} s (target within 0.2 s)")
    return 0
