"""Command `predict`: score a file of new movies (CSV or JSONL) with the pipeline's model.

Every row is validated against the pre-release schema (stages/scoring/score.py). Valid rows
get `success_probability` and `predicted_revenue`; invalid rows are listed with the reason
in the rejected file instead of failing the whole file. `row` is the 1-based position of
the movie in the input (CSV header not counted). In CSV, list fields (genres, cast,
keywords, production_companies) are a JSON array or values separated by `|`; an empty
cell means unknown. The work is done by stages/scoring/batch.py.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import stages.scoring.lifeline  # noqa: F401  (first: a spawned worker dies with its parent)
from stages.api.settings import TRAIN_STAGE, model_from_lock
from stages.core.cli import UserError, run
from stages.core.pushgateway import record
from stages.model.artifact import require_model_file
from stages.scoring.batch import default_jobs, read_chunks, write_scores
from stages.scoring.outputs import all_or_nothing, check_paths

log = logging.getLogger(__name__)

DVC_LOCK = Path("dvc.lock")


def default_model() -> Path:
    """The train stage's model output as dvc.lock records it: the path is declared once, in
    dvc.yaml, and the service defaults to the same file."""
    ref = model_from_lock(DVC_LOCK)
    if ref is None:
        raise UserError(
            f"{DVC_LOCK}: no '{TRAIN_STAGE}' model output found; run 'make repro' or pass --model"
        )
    return ref.path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", type=Path, required=True, help="movies (.csv or .jsonl)")
    parser.add_argument("--output", type=Path, required=True, help="scores (CSV)")
    parser.add_argument(
        "--rejected", type=Path, help="rejected rows with reasons (default: OUTPUT.rejected.csv)"
    )
    parser.add_argument(
        "--model", type=Path, help=f"default: the '{TRAIN_STAGE}' output recorded in {DVC_LOCK}"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        help="processes scoring chunks (default: 1 for small files, else one per core)",
    )
    args = parser.parse_args(argv)
    model_path = require_model_file(args.model or default_model())
    rejected_path = args.rejected or args.output.with_suffix(".rejected.csv")
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: use 1 or more processes")

    chunks = read_chunks(args.input)  # a missing file, unknown format or bad header fail here
    check_paths(args.input, [("--output", args.output), ("--rejected", rejected_path)])
    jobs = args.jobs or default_jobs(args.input)
    # both files replace the previous ones only if the run succeeds (not all rows rejected)
    with all_or_nothing([args.output, rejected_path]) as (out, rej):
        written = write_scores(model_path, chunks, out, rej, jobs=jobs)
        if written.scored == 0 and written.rejected > 0:
            row, reason = written.first_rejected[0]
            raise UserError(
                f"{args.input}: every row was rejected ({written.rejected}), e.g. row {row}: "
                f"{reason[:300]}; fix them (previous outputs kept)"
            )
    for row, reason in written.first_rejected:
        log.warning("predict: %s row %s rejected: %s", args.input, row, reason)
    record(rows=written.scored)
    log.info(
        "predict: scored %s movies to %s, rejected %s (listed in %s)",
        written.scored,
        args.output,
        written.rejected,
        rejected_path,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
