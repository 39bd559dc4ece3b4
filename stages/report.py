"""Command `report`: a markdown report comparing the workspace (head) with a base revision.

Run after `dvc repro` on a pull request. The numbers and plots are DVC's own:
`dvc metrics diff --all --json`, `dvc params diff --all --json` and `dvc plots diff --json`
against the base (run concurrently), so the report shows what `dvc metrics diff` and
`dvc plots show` show, with a better/worse marker per metric (DVC has no notion of direction).
The plots are dvc.yaml's definitions, base and head overlaid, rendered to PNG with vl-convert
(without it, their Vega-Lite specs). The data summary (data/prepared/validation.json, an output,
not a metric) is read at the base through DVC (`DVCFileSystem`: local cache, then the remote).
Posted on the PR by the `pr-report` workflow with CML, and written to the job summary.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

from stages.compare.dvc_diff import commands, finish, plot_specs, sides, start_all
from stages.compare.markdown import render
from stages.compare.readers import RevReader, WorkspaceReader
from stages.compare.revision import resolve_rev, short
from stages.compare.snapshot import (
    CARD,
    METRICS,
    PARAMS,
    VALIDATION,
    Snapshot,
    data_summary,
    parse_json,
)
from stages.core.cli import run
from stages.core.io import write_text

log = logging.getLogger(__name__)


def names(root: Path, ref: str, rev: str) -> bool:
    """Whether `ref` itself (not origin/`ref`) resolves to commit `rev` in this clone."""
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0 and proc.stdout.strip() == rev


def main(argv: Sequence[str] | None = None) -> int:
    """Write --out/report.md, the plots (PNG + Vega-Lite spec) and the model card beside it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="base revision (branch, tag or sha)")
    parser.add_argument("--out", type=Path, required=True, help="folder for report.md + plots")
    parser.add_argument("--repo", type=Path, default=Path("."), help="repository root")
    parser.add_argument("--metrics", default=METRICS, help="the headline metrics file")
    parser.add_argument("--validation", default=VALIDATION)
    parser.add_argument("--card", default=CARD)
    args = parser.parse_args(argv)
    root: Path = args.repo.resolve()
    out: Path = args.out

    rev = resolve_rev(root, args.base)
    label = f"base `{args.base}` ({short(root, rev)})"
    # DVC labels the base's plot lines with the revision as given: the branch name when it
    # names this commit here, else the short sha (a shallow clone's fetched base).
    cmds = commands(args.base if names(root, args.base, rev) else short(root, rev))
    running = start_all(root, cmds)
    # While the three DVC commands run: the JS engine for the plots, and the base's data
    # summary (an output, read through DVC at the base revision).
    from stages.compare.plots import render as render_plots
    from stages.compare.plots import warm_up

    warming = threading.Thread(target=warm_up, daemon=True)
    warming.start()
    base_reader = RevReader(root, rev)
    base_validation = parse_json(base_reader.read(args.validation), f"{label}:{args.validation}")
    head_reader = WorkspaceReader(root)
    head_validation = parse_json(head_reader.read(args.validation), args.validation)
    diffs = finish(running, cmds)
    metrics = sides(diffs["metrics"], args.metrics)
    params = sides(diffs["params"], PARAMS)
    warming.join()
    base = Snapshot(
        label=label,
        metrics=metrics.base,
        params=params.base,
        data=data_summary(base_validation),
        notes=tuple(base_reader.notes),
    )
    head = Snapshot(
        label="head (workspace)",
        metrics=metrics.head or None,
        params=params.head,
        data=data_summary(head_validation),
    )

    out.mkdir(parents=True, exist_ok=True)
    plots, plot_note = render_plots(plot_specs(diffs["plots"]), out)
    card = head_reader.read(args.card)
    if card is not None:
        write_text(out / "model_card.md", card)
    report = out / "report.md"
    write_text(report, render(base, head, card, plots=plots, plot_note=plot_note))
    log.info("report: wrote %s (%d plots)", report, len(plots))
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
