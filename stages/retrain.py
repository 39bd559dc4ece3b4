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
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stages.core.cli import UserError, run
from stages.core.io import write_json, write_text
from stages.core.params import load_section
from stages.report import (
    METRICS,
    PARAMS,
    VALIDATION,
    Paths,
    Scalar,
    base_snapshot,
    compare,
    direction,
    flatten,
    parse_json,
    read_workspace,
    resolve_rev,
    short,
)

log = logging.getLogger(__name__)

EXIT_COMMIT = 0
EXIT_FAILED = 1
EXIT_GATED = 10


@dataclass(frozen=True)
class RetrainParams:
    guarded_metrics: tuple[str, ...]
    tolerance: float


@dataclass(frozen=True)
class Decision:
    action: str  # "commit" or "review"
    reasons: tuple[str, ...]
    guarded: tuple[dict[str, Any], ...]

    @property
    def exit_code(self) -> int:
        return EXIT_COMMIT if self.action == "commit" else EXIT_GATED


_LTE = re.compile(
    r"^(?P<indent>[ \t]+)release_date_lte:(?P<ws>[ \t]*)(?P<value>[^#\n]*?)(?P<rest>[ \t]*(#.*)?)$"
)


def set_release_date_lte(text: str, day: dt.date) -> str:
    """params.yaml text with collect.release_date_lte set to `day`, every other byte kept."""
    lines = text.splitlines(keepends=True)
    in_collect = False
    for i, line in enumerate(lines):
        if re.match(r"^\S", line):
            in_collect = line.startswith("collect:")
            continue
        m = _LTE.match(line.rstrip("\n"))
        if in_collect and m:
            eol = line[len(line.rstrip("\r\n")) :]
            ws = m["ws"] or " "
            lines[i] = f'{m["indent"]}release_date_lte:{ws}"{day.isoformat()}"{m["rest"]}{eol}'
            return "".join(lines)
    raise UserError(
        "params.yaml: collect.release_date_lte not found; add it to the collect section"
    )


def decide(
    validation: Mapping[str, Any] | None,
    base: Mapping[str, Scalar] | None,
    head: Mapping[str, Scalar] | None,
    params: RetrainParams,
) -> Decision:
    """Commit only with passed validation and no guarded metric worse by more than tolerance."""
    reasons: list[str] = []
    if validation is None or validation.get("passed") is not True:
        reasons.append("data validation did not pass")
    if head is None:
        reasons.append("no metrics at head")
    if base is None:
        reasons.append("the base has no metrics to compare with")
    guarded = []
    deltas = {d.key: d for d in compare(base, head or {})}
    for key in params.guarded_metrics:
        d = deltas.get(key)
        sign = direction(key)
        if d is None or d.change is None:
            if base is not None and head is not None:
                reasons.append(f"guarded metric {key} missing at base or head")
            continue
        if sign == 0:
            raise UserError(
                f"params.yaml: retrain.guarded_metrics has '{key}', whose direction is unknown; "
                "guard only metrics where higher or lower is better"
            )
        worse_by = -d.change * sign
        regressed = worse_by > params.tolerance
        guarded.append(
            {
                "metric": key,
                "base": d.base,
                "head": d.head,
                "change": d.change,
                "worse_by": max(0.0, worse_by),
                "regressed": regressed,
            }
        )
        if regressed:
            reasons.append(
                f"{key} is worse by {worse_by:.6g} ({d.base} -> {d.head}), "
                f"more than the tolerance {params.tolerance}"
            )
    return Decision("review" if reasons else "commit", tuple(reasons), tuple(guarded))


def decision_markdown(decision: Decision, day: dt.date, base_label: str) -> str:
    verdict = "passed the gate: commit" if decision.action == "commit" else "gated: open for review"
    lines = [f"# Retrain on data up to {day.isoformat()}: {verdict}", "", f"Base: {base_label}", ""]
    if decision.reasons:
        lines += ["Why it is gated:", "", *[f"- {r}" for r in decision.reasons], ""]
    if decision.guarded:
        lines += ["| guarded metric | base | head | worse by |", "| --- | ---: | ---: | ---: |"]
        lines += [
            f"| `{g['metric']}` | {g['base']} | {g['head']} | {g['worse_by']:.6g} |"
            for g in decision.guarded
        ]
        lines.append("")
    return "\n".join(lines)


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {value!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
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
    base, _ = base_snapshot(root, rev, base_label, paths)
    head = parse_json(read_workspace(root, args.metrics), args.metrics)
    validation = parse_json(read_workspace(root, args.validation), args.validation)
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
