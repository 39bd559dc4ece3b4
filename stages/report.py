"""Command `report`: a markdown report comparing the workspace (head) with a base revision.

Run after `dvc repro` on a pull request: metrics with better/worse markers, params diff, data
summary diff, the key plots of head next to base, and the model card. The base revision's files
are read through DVC (`DVCFileSystem` at that revision: local cache first, then the remote), so
nothing has to be checked out. Posted on the PR by the `pr-report` workflow with CML.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from stages.compare.markdown import render
from stages.compare.readers import RevReader, WorkspaceReader
from stages.compare.revision import resolve_rev, short
from stages.compare.snapshot import CARD, METRICS, PLOTS, VALIDATION, Paths, read_snapshot
from stages.core.cli import run
from stages.core.io import write_text

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Write --out/report.md with the PNGs of head and base and the model card beside it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="base revision (branch, tag or sha)")
    parser.add_argument("--out", type=Path, required=True, help="folder for report.md + PNGs")
    parser.add_argument("--repo", type=Path, default=Path("."), help="repository root")
    parser.add_argument("--metrics", default=METRICS)
    parser.add_argument("--validation", default=VALIDATION)
    parser.add_argument("--plots", default=PLOTS)
    parser.add_argument("--card", default=CARD)
    args = parser.parse_args(argv)
    paths = Paths(args.metrics, args.validation, args.plots, args.card)
    root: Path = args.repo.resolve()
    out: Path = args.out

    rev = resolve_rev(root, args.base)
    label = f"base `{args.base}` ({short(root, rev)})"
    base_reader = RevReader(root, rev)
    base = read_snapshot(base_reader, label, paths, where=f"{label}:")
    head_reader = WorkspaceReader(root)
    head = read_snapshot(head_reader, "head (workspace)", paths)

    out.mkdir(parents=True, exist_ok=True)
    for name in head.plots:
        head_reader.copy(f"{paths.plots}/{name}", out / f"head_{name}")
    for name in base.plots:
        base_reader.copy(f"{paths.plots}/{name}", out / f"base_{name}")
    card = head_reader.read(paths.card)
    if card is not None:
        write_text(out / "model_card.md", card)
    report = out / "report.md"
    write_text(report, render(base, head, card))
    log.info("report: wrote %s", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
