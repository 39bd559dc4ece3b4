"""Command `retrain`: move the data snapshot to a day, reproduce, and gate the new model against
the base's on the same films.

The scheduled `retrain` workflow runs this on TMDB data (`collect.source: tmdb`); the frozen
bundled sample is refused. The base revision's model (the champion, read through DVC) and the
model this repro built (the challenger) are both scored on the new snapshot's test films; the
gate (stages/compare/gate.py) commits when data validation passed and no guarded metric of the
challenger is worse than the champion's by more than `retrain.tolerance`. Exit codes tell the
workflow what to do next:

- 0  passed the gate: commit params.yaml + dvc.lock to the base branch;
- 3  nothing to do: the repro left the base's model unchanged (same dvc.lock or model md5);
- 10 gated: open a pull request with the report for a human to review;
- 1  the pipeline failed (`dvc repro` exited non-zero);
- 2  a user error, one line on stderr, params.yaml untouched: the sample as source, a base
     without a (loadable) model, a --date before the base's snapshot, bad params.

decision.json and decision.md are written to --out for the workflow to read (not on exit 2).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import subprocess
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from stages.compare.gate import EXIT_FAILED, EXIT_NOTHING, RULE, RetrainParams
from stages.compare.readers import RevReader, WorkspaceReader
from stages.compare.release_date import set_release_date_lte
from stages.compare.revision import resolve_rev, short
from stages.compare.snapshot import (
    LOCK,
    MODEL,
    PARAMS,
    TEST,
    VALIDATION,
    parse_json,
    parse_params,
)
from stages.core.cli import UserError, run
from stages.core.io import write_json, write_text
from stages.core.params import load_key, load_section

log = logging.getLogger(__name__)


def _date(value: str) -> dt.date:
    """--date as a date; a malformed one is an argparse error naming the expected format."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {value!r}") from None


def refuse_sample(params_path: Path) -> None:
    """A scheduled retrain of the frozen bundled sample is meaningless: refuse it."""
    source = load_key(str, "collect", "source", params_path)
    if source == "sample":
        raise UserError(
            f"{params_path}: collect.source is 'sample', a frozen dataset: retraining on it "
            "changes nothing; set collect.source: tmdb (docs/retrain.md)"
        )


def check_date(day: dt.date, base_params: str | None, label: str) -> None:
    """--date may not move the snapshot back before the base's collect.release_date_lte."""
    flat = parse_params(base_params, f"{label}: {PARAMS}") or {}
    raw = flat.get("collect.release_date_lte")
    try:
        base_day = dt.date.fromisoformat(str(raw))
    except ValueError:
        raise UserError(
            f"base {label}: {PARAMS} has no collect.release_date_lte date (found {raw!r})"
        ) from None
    if day < base_day:
        raise UserError(
            f"--date {day} is before the base's snapshot (collect.release_date_lte {base_day} "
            f"at {label}); a retrain moves the snapshot forward"
        )


def write_decision(out: Path, data: dict[str, Any], markdown: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "decision.json", data)
    write_text(out / "decision.md", markdown)


def unchanged(base_lock: str | None, head_lock: str | None, path: str) -> str | None:
    """Why the repro changed nothing the gate compares, or None if the model is new."""
    from stages.compare.champion import lock_md5

    if head_lock is not None and head_lock == base_lock:
        return f"the repro left {LOCK} identical to the base's"
    md5 = lock_md5(head_lock, path)
    if md5 is not None and md5 == lock_md5(base_lock, path):
        return f"the new {path} is the base's (md5 {md5})"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Check, move the snapshot date, reproduce, gate; write --out/decision.json and .md."""
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
    parser.add_argument("--model", default=MODEL, help="the train stage's output")
    parser.add_argument("--test", default=TEST, help="the prepare stage's test split")
    parser.add_argument("--validation", default=VALIDATION)
    parser.add_argument("--pull", action="store_true", help="dvc repro --pull (CI)")
    args = parser.parse_args(argv)
    root = Path.cwd()

    # Every check that can refuse runs before params.yaml is touched.
    refuse_sample(args.params)
    params = load_section(RetrainParams, "retrain", args.params)
    params.check(str(args.params))
    # The paired bootstrap resamples as evaluate's interval does: declared once, there.
    from stages.evaluate import EvaluateParams  # its ranges; imports sklearn

    seed = load_key(EvaluateParams, "evaluate", "seed", args.params)
    rounds = load_key(EvaluateParams, "evaluate", "bootstrap_rounds", args.params)
    rev = resolve_rev(root, args.base)
    label = f"`{args.base}` ({short(root, rev)})"
    reader = RevReader(root, rev)
    check_date(args.date, reader.read(PARAMS), label)
    base_lock = reader.read(LOCK)

    from stages.compare.champion import base_model  # sklearn and skops: only once needed

    champion = base_model(reader, label, args.model)

    text = args.params.read_text(encoding="utf-8")
    new_text = set_release_date_lte(text, args.date)
    if new_text != text:
        write_text(args.params, new_text)
    cmd = ["dvc", "repro", *(["--pull"] if args.pull else [])]
    log.info("retrain: collect.release_date_lte = %s; running %s", args.date, " ".join(cmd))
    proc = subprocess.run(cmd, cwd=root, check=False)
    common = {"date": args.date.isoformat(), "base": args.base, "base_rev": rev}
    if proc.returncode != 0:
        reason = f"`{' '.join(cmd)}` exited {proc.returncode}"
        write_decision(
            args.out,
            {"action": "failed", "exit_code": EXIT_FAILED, **common, "reasons": [reason]},
            f"# Retrain failed\n\n{reason}; see the workflow log.\n",
        )
        log.error("retrain: %s", reason)
        return EXIT_FAILED

    workspace = WorkspaceReader(root)
    why = unchanged(base_lock, workspace.read(LOCK), args.model)
    if why is not None:
        write_decision(
            args.out,
            {"action": "nothing", "exit_code": EXIT_NOTHING, **common, "reasons": [why]},
            f"# Retrain on data up to {args.date}: nothing to do\n\n{why.capitalize()}: "
            f"the model is {label}'s; nothing to commit.\n",
        )
        log.info("retrain: nothing to do (%s)", why)
        return EXIT_NOTHING

    import pandas as pd

    from stages.compare.champion import champion_vs_challenger
    from stages.compare.gate import decide
    from stages.compare.markdown import decision_markdown
    from stages.model.artifact import load_model

    challenger = load_model(root / args.model)
    test = pd.read_parquet(root / args.test)
    same = champion_vs_challenger(champion, challenger, test, rounds, seed, label)
    validation = parse_json(workspace.read(args.validation), args.validation)
    decision = decide(validation, same, params)
    write_decision(
        args.out,
        {
            "action": decision.action,
            "exit_code": decision.exit_code,
            **common,
            "reasons": list(decision.reasons),
            "rule": RULE,
            "tolerance": params.tolerance,
            "same_rows": asdict(same),
            "guarded": [asdict(g) for g in decision.guarded],
        },
        decision_markdown(decision, same, args.date, label),
    )
    roc = same.get("roc_auc")
    log.info(
        "retrain: %s; ROC AUC base %s new %s (difference %+.4f, interval %+.4f to %+.4f) on %s "
        "films; %s",
        decision.action,
        roc.base,
        roc.head,
        roc.difference,
        roc.lo,
        roc.hi,
        same.rows,
        "; ".join(decision.reasons) or "gate passed",
    )
    return decision.exit_code


if __name__ == "__main__":
    raise SystemExit(run(main))
