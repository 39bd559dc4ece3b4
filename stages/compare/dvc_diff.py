"""What DVC itself says changed: `dvc metrics diff`, `dvc params diff`, `dvc plots diff`.

The report takes its numbers and plots from DVC's own JSON, so a reviewer sees what
`dvc metrics diff` / `dvc plots show` would show them; only the better/worse direction (which
DVC lacks) is ours. The three commands run concurrently: each costs about a second of start-up.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.compare.flat import Scalar
from stages.core.cli import UserError


@dataclass(frozen=True)
class Sides:
    """A DVC diff split into the base's and head's flat maps (None: the base has none)."""

    base: dict[str, Scalar] | None
    head: dict[str, Scalar]


def commands(rev: str) -> dict[str, list[str]]:
    """The DVC commands the report runs against the base revision `rev` (workspace = head)."""
    return {
        "metrics": ["dvc", "metrics", "diff", "--all", "--json", rev],
        "params": ["dvc", "params", "diff", "--all", "--json", rev],
        "plots": ["dvc", "plots", "diff", "--json", rev],
    }


Running = dict[str, "subprocess.Popen[str]"]


def start_all(root: Path, cmds: Mapping[str, Sequence[str]]) -> Running:
    """Start the commands at once in `root` (the caller works meanwhile, then `finish`es)."""
    return {
        k: subprocess.Popen(
            list(c), cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for k, c in cmds.items()
    }


def run_all(root: Path, cmds: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """Run the commands at once in `root`; each one's parsed JSON, or a UserError naming it."""
    return finish(start_all(root, cmds), cmds)


def finish(procs: Running, cmds: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """Wait for the started commands; each one's parsed JSON, or a UserError naming it."""
    out: dict[str, Any] = {}
    for key, proc in procs.items():
        stdout, stderr = proc.communicate()
        cmd = " ".join(cmds[key])
        if proc.returncode != 0:
            last = (stderr.strip().splitlines() or ["no output"])[-1]
            raise UserError(f"`{cmd}` exited {proc.returncode}: {last}")
        try:
            out[key] = json.loads(stdout or "{}")
        except json.JSONDecodeError:
            raise UserError(f"`{cmd}` printed no JSON: {stdout[:200]!r}") from None
    return out


def sides(diff: Mapping[str, Any], primary: str) -> Sides:
    """`{file: {key: {old, new, diff}}}` to base/head maps; keys of files other than `primary`
    are prefixed `file:`. A key whose `old` is null is new at head; no `old` at all: no base."""
    base: dict[str, Scalar] = {}
    head: dict[str, Scalar] = {}
    for path, entries in diff.items():
        if not isinstance(entries, Mapping):
            continue  # {"error": ...} of an unreadable file
        prefix = "" if path == primary else f"{path}:"
        for key, change in entries.items():
            if not isinstance(change, Mapping):
                continue
            name = f"{prefix}{key}"
            if change.get("old") is not None:
                base[name] = change["old"]
            if change.get("new") is not None:
                head[name] = change["new"]
    return Sides(base if base else None, head)


@dataclass(frozen=True)
class PlotSpec:
    """One plot of `dvc plots diff --json`: its title and the Vega-Lite spec, revisions overlaid."""

    title: str
    spec: dict[str, Any]
    revisions: tuple[str, ...]


def plot_specs(data: Mapping[str, Any]) -> list[PlotSpec]:
    """The Vega(-Lite) plots of `dvc plots diff --json` in dvc.yaml's order (images skipped)."""
    specs = []
    for title, entries in (data.get("data") or {}).items():
        for entry in entries:
            if entry.get("type") == "vega" and isinstance(entry.get("content"), dict):
                revs = tuple(str(r) for r in entry.get("revisions", ()))
                specs.append(PlotSpec(str(title), entry["content"], revs))
    return specs
