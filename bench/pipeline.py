"""Pipeline timings: full `dvc repro` on the sample, and a no-op repro against `dvc status`.

Targets: full repro <= 30 s on 2 cores; a no-op repro within 0.2 s of `dvc status`.
Runs in a temporary copy of the project so the working tree is untouched.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from bench._util import RUNS, project_copy, sh


def main(argv: list[str] | None = None) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        repo = project_copy(Path(tmp))
        full = [sh("dvc", "repro", "--force", cwd=repo) for _ in range(RUNS)]
        noop = [sh("dvc", "repro", cwd=repo) for _ in range(RUNS)]
        status = [sh("dvc", "status", cwd=repo) for _ in range(RUNS)]
    m_full, m_noop, m_status = (statistics.median(x) for x in (full, noop, status))
    print(f"bench.pipeline: medians of {RUNS} runs")
    print(f"  dvc repro --force: {m_full:6.2f} s  (target <= 30 s)")
    print(f"  no-op dvc repro:   {m_noop:6.2f} s")
    print(f"  dvc status:        {m_status:6.2f} s")
    print(f"  difference:        {m_noop - m_status:+6.2f} s  (target within 0.2 s)")
    return 0
