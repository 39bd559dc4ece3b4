"""Metrics of two sides compared key by key, each with a verdict a reviewer can scan."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from stages.compare.direction import direction
from stages.compare.flat import Scalar, is_number

Verdict = Literal["better", "worse", "same", "new", "removed", "changed"]


@dataclass(frozen=True)
class Delta:
    """One metric compared: `verdict` is better, worse, same, new, removed or changed."""

    key: str
    base: Scalar
    head: Scalar
    change: float | None
    verdict: Verdict


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
        elif is_number(b) and is_number(h):
            change = float(h) - float(b)
            sign = direction(key)
            verdict: Verdict
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
