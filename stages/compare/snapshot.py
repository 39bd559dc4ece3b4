"""One side of a comparison: its metrics, params, data summary and plots, read from its files.

The same code reads the base revision and the workspace (any `Reader`), so both sides are
parsed, flattened and summarised alike and compare key by key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from stages.compare.flat import Scalar, flatten, is_number
from stages.core.cli import UserError

# Where the pipeline writes what the comparison reads (the same strings as in dvc.yaml).
METRICS = "models/metrics.json"
VALIDATION = "data/prepared/validation.json"
PLOTS = "models/plots"
CARD = "models/model_card.md"
PARAMS = "params.yaml"
MODEL = "models/model.skops"  # the champion and the challenger
TEST = "data/prepared/test.parquet"  # the films both are scored on
LOCK = "dvc.lock"


@dataclass(frozen=True)
class Paths:
    """The files of one side, relative to the repository root; options of the commands."""

    metrics: str = METRICS
    validation: str = VALIDATION
    plots: str = PLOTS
    card: str = CARD
    params: str = PARAMS


@dataclass(frozen=True)
class Snapshot:
    """What the report needs from one revision; None where the revision has no such file."""

    label: str
    metrics: dict[str, Scalar] | None = None
    params: dict[str, Scalar] | None = None
    data: dict[str, Scalar] | None = None
    plots: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class Reader(Protocol):
    """Files of one side: `read` gives None for a missing file, `notes` says what went wrong."""

    notes: list[str]

    def read(self, path: str) -> str | None:
        """The text of `path` (relative to the repository root), None where it is missing."""

    def pngs(self, folder: str) -> list[str]:
        """The names of the PNG files directly in `folder`, sorted."""


def parse_json(text: str | None, where: str) -> dict[str, Any] | None:
    """A JSON object, or None for a missing file; a broken file is a UserError naming it."""
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
    """params.yaml flattened (train.learning_rate, ...), or None for a missing file."""
    if text is None:
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise UserError(f"{where}: not valid YAML; fix the syntax") from None
    return flatten(data if isinstance(data, dict) else {})


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
    out["dropped_total"] = sum(
        v for k, v in flat.items() if k.startswith("dropped.") and is_number(v)
    )
    return out


def read_snapshot(reader: Reader, label: str, paths: Paths, where: str = "") -> Snapshot:
    """The snapshot of the side `reader` reads; `where` prefixes the file names in errors."""
    metrics = parse_json(reader.read(paths.metrics), f"{where}{paths.metrics}")
    params = parse_params(reader.read(paths.params), f"{where}{paths.params}")
    validation = parse_json(reader.read(paths.validation), f"{where}{paths.validation}")
    return Snapshot(
        label=label,
        metrics=flatten(metrics) if metrics is not None else None,
        params=params,
        data=data_summary(validation),
        plots=tuple(reader.pngs(paths.plots)),
        notes=tuple(reader.notes),
    )
