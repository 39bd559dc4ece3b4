"""Flat maps of scalars: the one form metrics, params and data summaries are compared in."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, TypeGuard

Scalar = float | int | str | bool | None


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


def is_number(value: Scalar) -> TypeGuard[int | float]:
    """A finite int or float: the only values a change can be computed for (bool is not one)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
