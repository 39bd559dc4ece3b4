"""The retrain gate: commit a retrained model only if no guarded metric got worse.

Worse means by more than `retrain.tolerance`, in the metric's own direction; data that did not
pass validation, or a side without metrics, always goes to a human for review.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from stages.compare.delta import compare
from stages.compare.direction import direction
from stages.compare.flat import Scalar
from stages.core.cli import UserError

# Exit codes of `retrain`: what the workflow does next (see stages/retrain.py).
EXIT_COMMIT = 0
EXIT_FAILED = 1
EXIT_GATED = 10


@dataclass(frozen=True)
class RetrainParams:
    """The `retrain` section of params.yaml."""

    guarded_metrics: tuple[str, ...]
    tolerance: float


@dataclass(frozen=True)
class Guard:
    """One guarded metric checked: `worse_by` is 0 where it did not get worse."""

    metric: str
    base: Scalar
    head: Scalar
    change: float
    worse_by: float
    regressed: bool


@dataclass(frozen=True)
class Decision:
    """The gate's outcome; `reasons` is empty exactly when the action is commit."""

    action: Literal["commit", "review"]
    reasons: tuple[str, ...]
    guarded: tuple[Guard, ...]

    @property
    def exit_code(self) -> int:
        """The exit code that tells the workflow to commit or to open a pull request."""
        return EXIT_COMMIT if self.action == "commit" else EXIT_GATED


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
    guarded: list[Guard] = []
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
        guarded.append(Guard(key, d.base, d.head, d.change, max(0.0, worse_by), regressed))
        if regressed:
            reasons.append(
                f"{key} is worse by {worse_by:.6g} ({d.base} -> {d.head}), "
                f"more than the tolerance {params.tolerance}"
            )
    return Decision("review" if reasons else "commit", tuple(reasons), tuple(guarded))
