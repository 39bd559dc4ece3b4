"""Command `report`: a markdown report comparing the workspace (head) with a base revision.

Run after `dvc repro` on a pull request: metrics with better/worse markers, params diff, data
summary diff, the key plots of head next to base, and the model card. The base revision's files
are read through DVC (`DVCFileSystem` at that revision: local cache first, then the remote), so
nothing has to be checked out. Posted on the PR by the `pr-report` workflow with CML.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stages.core.cli import UserError, run
from stages.core.io import write_text

log = logging.getLogger(__name__)

# Where the pipeline writes what the report reads (the same strings as in dvc.yaml).
METRICS = "models/metrics.json"
VALIDATION = "data/prepared/validation.json"
PLOTS = "models/plots"
CARD = "models/model_card.md"
PARAMS = "params.yaml"

HIGHER_BETTER = frozenset(
    {"roc_auc", "pr_auc", "auc", "f1", "precision", "recall", "accuracy", "r2", "ap"}
)
LOWER_BETTER = frozenset({"log_loss", "brier", "rmsle", "rmse", "mae", "mse"})
NEUTRAL = frozenset({"rows", "base_rate", "threshold"})

Scalar = float | int | str | bool | None


# --------------------------------------------------------------------------- pure core


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Scalar]:
    """Nested dicts (and lists) to one level, keys joined with '.', so any metrics file fits."""
    out: dict[str, Scalar] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            if all(not isinstance(v, Mapping | list | tuple) for v in value):
                out[name] = json.dumps(list(value))
            else:
                out.update(flatten({str(i): v for i, v in enumerate(value)}, f"{name}."))
        else:
            out[name] = value
    return out


def direction(key: str) -> int:
    """+1 if a higher value is better, -1 if lower is better, 0 if neutral or unknown.

    Decided by the leaf name only, so new nested metrics (backtest.mean.roc_auc) need no code.
    """
    leaf = key.rsplit(".", 1)[-1].lower()
    if leaf in NEUTRAL:
        return 0
    if leaf in LOWER_BETTER or "loss" in leaf or "error" in leaf:
        return -1
    if leaf in HIGHER_BETTER or any(leaf.startswith(f"{h}_") for h in HIGHER_BETTER):
        return 1
    return 0


def _is_number(v: Scalar) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class Delta:
    """One metric compared: `verdict` is better, worse, same, new, removed or changed."""

    key: str
    base: Scalar
    head: Scalar
    change: float | None
    verdict: str


def compare(base: Mapping[str, Scalar] | None, head: Mapping[str, Scalar]) -> list[Delta]:
    """Compare flattened metrics; a metric missing on one side is `new` or `removed`."""
    base = base or {}
    deltas = []
    for key in sorted(set(base) | set(head)):
        b, h = base.get(key), head.get(key)
        if key not in base:
            deltas.append(Delta(key, None, h, None, "new"))
        elif key not in head:
            deltas.append(Delta(key, b, None, None, "removed"))
        elif _is_number(b) and _is_number(h):
            change = float(h) - float(b)  # type: ignore[arg-type]
            sign = direction(key)
            if change == 0:
                verdict = "same"
            elif sign == 0:
                verdict = "changed"
            else:
                verdict = "better" if change * sign > 0 else "worse"
            deltas.append(Delta(key, b, h, change, verdict))
        else:
            deltas.append(Delta(key, b, h, None, "same" if b == h else "changed"))
    return deltas


def fmt(v: Scalar) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


MARKERS = {"better": "🟢 better", "worse": "🔴 worse", "new": "new", "removed": "removed"}


def _metric_row(d: Delta) -> str:
    change = f"{d.change:+.6g}" if d.change is not None else ""
    marker = MARKERS.get(d.verdict, "")
    return f"| `{d.key}` | {fmt(d.base)} | {fmt(d.head)} | {change} | {marker} |"


def metrics_section(deltas: Sequence[Delta], base_available: bool) -> list[str]:
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


def data_summary(validation: Mapping[str, Any] | None) -> dict[str, Scalar] | None:
    """The data facts a reviewer wants: rows, base rate, dropped rows (total and per reason)."""
    if validation is None:
        return None
    flat = flatten(validation)
    out: dict[str, Scalar] = {
        k: v
        for k, v in flat.items()
        if k in {"rows_in", "rows_out", "passed"}
        or k.endswith((".rows", ".base_rate"))
        or k.startswith("dropped.")
    }
    dropped = [v for k, v in flat.items() if k.startswith("dropped.") and _is_number(v)]
    out["dropped_total"] = sum(dropped)  # type: ignore[arg-type]
    return out


@dataclass(frozen=True)
class Snapshot:
    """What the report needs from one revision; None where the revision has no such file."""

    label: str
    metrics: dict[str, Scalar] | None = None
    params: dict[str, Scalar] | None = None
    data: dict[str, Scalar] | None = None
    plots: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


def render(base: Snapshot, head: Snapshot, card: str | None) -> str:
    """The whole report as markdown; plots are referenced as `head_<name>` / `base_<name>`."""
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
    lines += ["## Plots", ""]
    names = sorted(set(base.plots) | set(head.plots))
    if not names:
        lines += ["Plots are not available (no PNG under `models/plots/`).", ""]
    else:
        lines += ["| plot | head | base |", "| --- | --- | --- |"]
        for n in names:
            h = f"![head {n}](head_{n})" if n in head.plots else "—"
            b = f"![base {n}](base_{n})" if n in base.plots else "—"
            lines.append(f"| {n} | {h} | {b} |")
        lines.append("")
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


# --------------------------------------------------------------------------- git and DVC


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)


def resolve_rev(root: Path, base: str, fetch: bool = True) -> str:
    """The commit of `base`; in a shallow clone fetch it once, else fail with the fix."""
    for candidate in (base, f"origin/{base}"):
        proc = _git(root, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}")
        if proc.returncode == 0:
            return proc.stdout.strip()
    if fetch:
        log.info("base %s is not in this clone; fetching it from origin", base)
        proc = _git(root, "fetch", "--quiet", "--no-tags", "--depth=1", "origin", base)
        if proc.returncode == 0:
            return _git(root, "rev-parse", "FETCH_HEAD").stdout.strip()
    raise UserError(
        f"base revision '{base}' is not in this clone (shallow?) and could not be fetched; "
        f"run `git fetch --depth=1 origin {base}` (or check out with fetch-depth: 0)"
    )


def short(root: Path, rev: str) -> str:
    return _git(root, "rev-parse", "--short", rev).stdout.strip() or rev[:8]


class RevReader:
    """Reads files of one revision through DVC: git-tracked files and DVC outputs alike."""

    def __init__(self, root: Path, rev: str) -> None:
        from dvc.api import DVCFileSystem  # heavy import, only when a base is read

        self.fs = DVCFileSystem(str(root), rev=rev)
        self.rev = rev
        self.notes: list[str] = []

    def read(self, path: str) -> str | None:
        from dvc.exceptions import DvcException

        try:
            if not self.fs.exists(path):
                return None
            return self.fs.read_text(path, encoding="utf-8")
        except (FileNotFoundError, DvcException) as exc:
            # An output in dvc.lock whose data is in neither the local cache nor the remote.
            self.notes.append(
                f"base `{path}` could not be read ({type(exc).__name__}); "
                "was it pushed? (`dvc push` on the base branch)"
            )
            return None

    def pngs(self, folder: str) -> list[str]:
        from dvc.exceptions import DvcException

        try:
            if not self.fs.isdir(folder):
                return []
            return sorted(Path(p).name for p in self.fs.glob(f"{folder}/*.png"))
        except (FileNotFoundError, DvcException):
            return []

    def copy(self, path: str, dest: Path) -> None:
        self.fs.get_file(path, str(dest))


def read_workspace(root: Path, path: str) -> str | None:
    p = root / path
    return p.read_text(encoding="utf-8") if p.is_file() else None


def parse_json(text: str | None, where: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise UserError(f"{where}: not valid JSON; re-run `dvc repro`") from None
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a JSON object")
    return data


def parse_params(text: str | None, where: str) -> dict[str, Scalar] | None:
    if text is None:
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise UserError(f"{where}: not valid YAML; fix the syntax") from None
    return flatten(data if isinstance(data, dict) else {})


@dataclass(frozen=True)
class Paths:
    metrics: str = METRICS
    validation: str = VALIDATION
    plots: str = PLOTS
    card: str = CARD
    params: str = PARAMS


def base_snapshot(root: Path, rev: str, label: str, paths: Paths) -> tuple[Snapshot, RevReader]:
    reader = RevReader(root, rev)
    metrics = parse_json(reader.read(paths.metrics), f"{label}:{paths.metrics}")
    snap = Snapshot(
        label=label,
        metrics=flatten(metrics) if metrics is not None else None,
        params=parse_params(reader.read(paths.params), f"{label}:{paths.params}"),
        data=data_summary(parse_json(reader.read(paths.validation), f"{label}:{paths.validation}")),
        plots=tuple(reader.pngs(paths.plots)),
        notes=tuple(reader.notes),
    )
    return snap, reader


def head_snapshot(root: Path, label: str, paths: Paths) -> Snapshot:
    metrics = parse_json(read_workspace(root, paths.metrics), paths.metrics)
    plots_dir = root / paths.plots
    return Snapshot(
        label=label,
        metrics=flatten(metrics) if metrics is not None else None,
        params=parse_params(read_workspace(root, paths.params), paths.params),
        data=data_summary(parse_json(read_workspace(root, paths.validation), paths.validation)),
        plots=tuple(sorted(p.name for p in plots_dir.glob("*.png"))) if plots_dir.is_dir() else (),
    )


def build_report(root: Path, base: str, out: Path, paths: Paths | None = None) -> Path:
    """Write out/report.md with the PNGs of head and base beside it; return the report path."""
    paths = paths or Paths()
    rev = resolve_rev(root, base)
    base_snap, reader = base_snapshot(root, rev, f"base `{base}` ({short(root, rev)})", paths)
    head_snap = head_snapshot(root, "head (workspace)", paths)
    out.mkdir(parents=True, exist_ok=True)
    for name in head_snap.plots:
        shutil.copyfile(root / paths.plots / name, out / f"head_{name}")
    for name in base_snap.plots:
        reader.copy(f"{paths.plots}/{name}", out / f"base_{name}")
    card = read_workspace(root, paths.card)
    if card is not None:
        write_text(out / "model_card.md", card)
    report = out / "report.md"
    write_text(report, render(base_snap, head_snap, card))
    return report


def main(argv: Sequence[str] | None = None) -> int:
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
    report = build_report(args.repo.resolve(), args.base, args.out, paths)
    log.info("report: wrote %s", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
