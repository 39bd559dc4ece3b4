"""Command `retrain`: move the data snapshot to a day, reproduce, and gate the result.

The scheduled `retrain` workflow runs this. The gate passes when data validation passed and no
guarded metric (`retrain.guarded_metrics`) is worse than the base revision by more than
`retrain.tolerance`. Exit codes tell the workflow what to do next:

- 0  improved or neutral: commit params.yaml + dvc.lock to the base branch;
- 10 gated: open a pull request with the report for a human to review;
- 1  the pipeline failed (`dvc repro` exited non-zero);
- 2  a user error (bad date, bad params, base revision not found).

A decision JSON and markdown are written to --out for the workflow to read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import subprocess
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from stages.compare.flat import flatten
from stages.compare.gate import EXIT_FAILED, RetrainParams, decide
from stages.compare.markdown import decision_markdown
from stages.compare.readers import RevReader, WorkspaceReader
from stages.compare.release_date import set_release_date_lte
from stages.compare.revision import resolve_rev, short
from stages.compare.snapshot import METRICS, PARAMS, VALIDATION, Paths, parse_json, read_snapshot
from stages.core.cli import run
from stages.core.io import write_json, write_text
from stages.core.params import load_section

log = logging.getLogger(__name__)


def _date(value: str) -> dt.date:
    """--date as a date; a malformed one is an argparse error naming the expected format."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {value!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Move the snapshot date, reproduce, gate; write --out/decision.json and decision.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--date",
        type=_date,
        default=dt.datetime.now(dt.UTC).date(),
        help="last release date of the snapshot (default: today, UTC)",
    )
    parser.add_argument("--base", default="main", help="revision to compare with")
    parser.add_argument("--out", type=Path, required=True, help="folder for decision.json/.md")
    parser.add_argument("--params", type=Path, default=Path(PARAMS))
    parser.add_argument("--metrics", default=METRICS)
    parser.add_argument("--validation", default=VALIDATION)
    parser.add_argument("--pull", action="store_true", help="dvc repro --pull (CI)")
    args = parser.parse_args(argv)
    root = Path.cwd()

    params = load_section(RetrainParams, "retrain", args.params)
    rev = resolve_rev(root, args.base)
    base_label = f"`{args.base}` ({short(root, rev)})"

    text = args.params.read_text(encoding="utf-8")
    new_text = set_release_date_lte(text, args.date)
    if new_text != text:
        write_text(args.params, new_text)
    log.info("retrain: collect.release_date_lte = %s; running dvc repro", args.date)

    cmd = ["dvc", "repro", *(["--pull"] if args.pull else [])]
    proc = subprocess.run(cmd, cwd=root, check=False)
    args.out.mkdir(parents=True, exist_ok=True)
    if proc.returncode != 0:
        write_json(
            args.out / "decision.json",
            {
                "action": "failed",
                "exit_code": EXIT_FAILED,
                "date": args.date.isoformat(),
                "reasons": [f"`{' '.join(cmd)}` exited {proc.returncode}"],
            },
        )
        write_text(
            args.out / "decision.md",
            f"# Retrain failed\n\n`{' '.join(cmd)}` "
            f"exited {proc.returncode}; see the workflow log.\n",
        )
        log.error("retrain: %s exited %s", " ".join(cmd), proc.returncode)
        return EXIT_FAILED

    paths = Paths(metrics=args.metrics, validation=args.validation, params=str(args.params))
    base = read_snapshot(RevReader(root, rev), base_label, paths, where=f"{base_label}:")
    workspace = WorkspaceReader(root)
    head = parse_json(workspace.read(args.metrics), args.metrics)
    validation = parse_json(workspace.read(args.validation), args.validation)
    decision = decide(validation, base.metrics, flatten(head) if head else None, params)

    write_json(
        args.out / "decision.json",
        {
            **asdict(decision),
            "exit_code": decision.exit_code,
            "date": args.date.isoformat(),
            "base": args.base,
            "base_rev": rev,
        },
    )
    write_text(args.out / "decision.md", decision_markdown(decision, args.date, base_label))
    log.info("retrain: %s (%s)", decision.action, "; ".join(decision.reasons) or "gate passed")
    return decision.exit_code


if __name__ == "__main__":
    raise SystemExit(run(main))
