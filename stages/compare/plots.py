"""The plots of `dvc plots diff` as PNG files, rendered with vl-convert (no browser, no node).

vl-convert-python is imported only here and only when a plot is rendered; without it the
report keeps each plot's Vega-Lite spec (`dvc plots show`-compatible JSON) and says why there
is no PNG.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.compare.dvc_diff import PlotSpec
from stages.core.io import write_text

SCALE = 1.0  # 1.5 looks crisper but costs ~0.5 s of the 10 s report budget


@dataclass(frozen=True)
class Rendered:
    """One plot beside the report: its spec file, and its PNG (None: not rendered, see note)."""

    title: str
    spec: str
    png: str | None
    revisions: tuple[str, ...]


def slug(title: str) -> str:
    """A file name for a plot title: 'Backtest ROC AUC by year' -> 'backtest_roc_auc_by_year'."""
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") or "plot"


def _finite(value: Any) -> Any:
    """The spec with non-finite numbers (sklearn's PR curve emits Infinity) as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def converter() -> Any | None:
    """The vl_convert module, or None where vl-convert-python is not installed."""
    try:
        import vl_convert
    except ImportError:
        return None
    return vl_convert


def warm_up() -> None:
    """Start vl-convert's JavaScript engine (about a second) while DVC computes the diffs."""
    vlc = converter()
    if vlc is not None:
        vlc.vegalite_to_svg({"mark": "point", "data": {"values": [{}]}})


def render(specs: Sequence[PlotSpec], out: Path) -> tuple[list[Rendered], str | None]:
    """Write `plot_<slug>.vl.json` for every plot and its PNG where vl-convert is available;
    the second value says why there are no PNGs (None when they were rendered)."""
    out.mkdir(parents=True, exist_ok=True)
    vlc = converter() if specs else None
    note = None
    if specs and vlc is None:
        note = (
            "PNGs not rendered: vl-convert-python is not installed; each plot's Vega-Lite "
            "spec is beside the report (open it in the Vega editor, or `dvc plots diff`)"
        )
    done: list[Rendered] = []
    seen: set[str] = set()
    for p in specs:
        name = slug(p.title)
        while name in seen:
            name += "_"
        seen.add(name)
        spec = _finite(p.spec)
        spec_file = f"plot_{name}.vl.json"
        write_text(out / spec_file, json.dumps(spec))
        png = None
        if vlc is not None:
            png = f"plot_{name}.png"
            (out / png).write_bytes(vlc.vegalite_to_png(spec, scale=SCALE))
        done.append(Rendered(p.title, spec_file, png, p.revisions))
    return done, note
