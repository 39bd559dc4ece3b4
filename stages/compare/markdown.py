"""Markdown for reviewers: the PR report of head against base, and the retrain decision.

Plain GitHub markdown (tables, <details>), as posted on pull requests by CML and written to
the job summary.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from stages.compare.delta import Delta, compare
from stages.compare.flat import Scalar
from stages.compare.gate import RULE, Decision
from stages.compare.snapshot import Snapshot

if TYPE_CHECKING:
    from stages.compare.paired import SameRows
    from stages.compare.plots import Rendered

MARKERS = {"better": "🟢 better", "worse": "🔴 worse", "new": "new", "removed": "removed"}


def fmt(v: Scalar) -> str:
    """A value for a table cell: short floats, lower-case booleans, a dash for missing."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _metric_row(d: Delta) -> str:
    """One table row of a compared metric, with its marker where the verdict has one."""
    change = f"{d.change:+.6g}" if d.change is not None else ""
    marker = MARKERS.get(d.verdict, "")
    return f"| `{d.key}` | {fmt(d.base)} | {fmt(d.head)} | {change} | {marker} |"


def metrics_section(deltas: Sequence[Delta], base_available: bool) -> list[str]:
    """The metrics table: changed metrics first, unchanged ones folded away below them."""
    lines = ["## Metrics", ""]
    if not deltas:
        return [*lines, "No metrics at head (`models/metrics.json` missing).", ""]
    if not base_available:
        lines += ["The base has no metrics yet: every metric is new.", ""]
    elif all(d.verdict == "same" for d in deltas):
        return [*lines, f"No change in any of the {len(deltas)} metrics.", ""]
    header = ["| metric | base | head | change | |", "| --- | ---: | ---: | ---: | --- |"]
    changed = [d for d in deltas if d.verdict != "same"]
    same = [d for d in deltas if d.verdict == "same"]
    lines += [*header, *[_metric_row(d) for d in changed]]
    worse = sum(d.verdict == "worse" for d in deltas)
    better = sum(d.verdict == "better" for d in deltas)
    if base_available:
        lines += ["", f"{better} better, {worse} worse (direction from the metric's name)."]
    if same:
        lines += ["", f"<details><summary>{len(same)} unchanged metrics</summary>", ""]
        lines += [*header, *[_metric_row(d) for d in same], "", "</details>"]
    return [*lines, ""]


def diff_table(
    title: str, base: Mapping[str, Scalar] | None, head: Mapping[str, Scalar], what: str
) -> list[str]:
    """A base/head table of the keys that differ, or one line saying nothing changed."""
    lines = [f"## {title}", ""]
    if base is None:
        return [*lines, f"The base has no {what}; head has {len(head)} values.", ""]
    changed = [k for k in sorted(set(base) | set(head)) if base.get(k) != head.get(k)]
    if not changed:
        return [*lines, f"No change in {what}.", ""]
    lines += ["| key | base | head |", "| --- | ---: | ---: |"]
    lines += [f"| `{k}` | {fmt(base.get(k))} | {fmt(head.get(k))} |" for k in changed]
    return [*lines, ""]


def plots_section(plots: Sequence[Rendered], note: str | None) -> list[str]:
    """dvc.yaml's plots, base and head overlaid (as `dvc plots diff`), each image or spec."""
    lines = ["## Plots", ""]
    if not plots:
        return [*lines, "No plots (`dvc plots diff` found none of dvc.yaml's plots).", ""]
    lines += ["Base and head overlaid, as `dvc plots diff BASE` shows them.", ""]
    for p in plots:
        revs = ", ".join(p.revisions)
        if p.png is not None:
            lines += [f"### {p.title}", "", f"![{p.title}]({p.png})", ""]
        else:
            lines += [f"### {p.title}", "", f"[Vega-Lite spec]({p.spec}) ({revs})", ""]
    if note:
        lines += [f"_{note}._", ""]
    return lines


def render(
    base: Snapshot,
    head: Snapshot,
    card: str | None,
    plots: Sequence[Rendered] = (),
    plot_note: str | None = None,
) -> str:
    """The whole report as markdown; plots are referenced by their file beside the report."""
    deltas = compare(base.metrics, head.metrics or {})
    lines = [f"# Model report: {head.label} vs {base.label}", ""]
    unchanged = (
        base.metrics is not None
        and all(d.verdict == "same" for d in deltas)
        and base.params == head.params
        and base.data == head.data
    )
    if unchanged:
        lines += [
            f"**No change** against {base.label}: metrics, params and data are identical.",
            "",
        ]
    lines += metrics_section(deltas, base.metrics is not None)
    lines += diff_table("Params", base.params, head.params or {}, "params")
    lines += diff_table("Data", base.data, head.data or {}, "the data summary")
    lines += plots_section(plots, plot_note)
    lines += ["## Model card", ""]
    if card is None:
        lines += ["No model card at head.", ""]
    else:
        lines += [
            "[model card](model_card.md)",
            "",
            "<details><summary>Model card</summary>",
            "",
            *[f"##{ln}" if ln.startswith("#") else ln for ln in card.strip().splitlines()],
            "",
            "</details>",
            "",
        ]
    notes = [*base.notes, *head.notes]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


def decision_markdown(decision: Decision, same: SameRows, day: dt.date, base_label: str) -> str:
    """The retrain decision for the pull request or the log: verdict, reasons, and both models
    on the same test films with each difference and its paired bootstrap interval."""
    verdict = "passed the gate: commit" if decision.action == "commit" else "gated: open for review"
    guarded = {g.metric: g for g in decision.guarded}
    lines = [
        f"# Retrain on data up to {day.isoformat()}: {verdict}",
        "",
        f"Base model: {base_label}. New model: retrained on this snapshot. Both are scored on",
        f"the same {same.rows} test films of the new snapshot (base rate {fmt(same.base_rate)}).",
        "",
    ]
    if decision.reasons:
        lines += ["Why it is gated:", "", *[f"- {r}" for r in decision.reasons], ""]
    lines += [
        f"| metric | base model | new model | difference | {same.level:.0%} interval | gate |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for m in same.metrics:
        g = guarded.get(m.metric)
        gate = "not guarded" if g is None else ("🔴 worse" if g.regressed else "ok")
        lines.append(
            f"| `{m.metric}` | {fmt(m.base)} | {fmt(m.head)} | {m.difference:+.6g} "
            f"| {m.lo:+.6g} to {m.hi:+.6g} | {gate} |"
        )
    lines += [
        "",
        f"Rule: {RULE}; tolerance {decision.tolerance:g}. Intervals: {same.resamples} of "
        f"{same.rounds} paired bootstrap resamples of the films (seed {same.seed}).",
        "",
    ]
    return "\n".join(lines)
