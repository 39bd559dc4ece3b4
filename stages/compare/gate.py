"""The retrain gate: champion (the base's model) against challenger (the retrained model) on the
same test films.

The rule: commit when data validation passed and, on the same films, no guarded metric of the
challenger is worse than the champion's by more than `retrain.tolerance` (absolute, in the
metric's own direction, on the point estimate). The paired bootstrap interval of each
difference is reported beside it for the reviewer; it does not decide. Anything else goes to a
human for review.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from stages.compare.direction import direction
from stages.core.cli import UserError

if TYPE_CHECKING:  # paired imports sklearn; `report` imports this module for the markdown
    from stages.compare.paired import SameRows

# Exit codes of `retrain`: what the workflow does next (see stages/retrain.py).
EXIT_COMMIT = 0
EXIT_FAILED = 1
EXIT_NOTHING = 3  # the repro changed no output the gate compares: nothing to commit
EXIT_GATED = 10

# The metrics both models are scored on, on the same rows (computed in stages.compare.paired).
COMPARED = ("roc_auc", "pr_auc", "log_loss", "brier")

RULE = (
    "commit when data validation passed and, on the same test films, no guarded metric of "
    "the new model is worse than the base model's by more than the tolerance (point "
    "estimate); the paired bootstrap intervals are shown, they do not decide"
)


@dataclass(frozen=True)
class RetrainParams:
    """The `retrain` section of params.yaml."""

    guarded_metrics: tuple[str, ...]
    tolerance: Annotated[float, Field(ge=0)]  # absolute, in the metric's own units

    def check(self, where: str = "params.yaml") -> None:
        """A UserError for a guarded metric the same-rows comparison does not compute (the
        tolerance's range is declared on the field and checked when params.yaml is loaded)."""
        for key in self.guarded_metrics:
            if key not in COMPARED:
                raise UserError(
                    f"{where}: retrain.guarded_metrics has '{key}'; the same-rows comparison "
                    f"computes {', '.join(COMPARED)}"
                )


@dataclass(frozen=True)
class Guard:
    """One guarded metric of both models on the same rows; `worse_by` is 0 where not worse."""

    metric: str
    base: float
    head: float
    difference: float  # head - base
    lo: float
    hi: float
    worse_by: float
    regressed: bool


@dataclass(frozen=True)
class Decision:
    """The gate's outcome; `reasons` is empty exactly when the action is commit."""

    action: Literal["commit", "review"]
    reasons: tuple[str, ...]
    guarded: tuple[Guard, ...]
    tolerance: float

    @property
    def exit_code(self) -> int:
        """The exit code that tells the workflow to commit or to open a pull request."""
        return EXIT_COMMIT if self.action == "commit" else EXIT_GATED


def validation_reasons(validation: Mapping[str, Any] | None) -> list[str]:
    """Why the data did not pass validation (its failed checks), or nothing if it did."""
    if validation is None:
        return ["data validation did not pass: no validation report"]
    if validation.get("passed") is True:
        return []
    checks = validation.get("checks")
    failed = [k for k, v in checks.items() if v is not True] if isinstance(checks, dict) else []
    return [f"data validation did not pass: {', '.join(failed) or 'passed is not true'}"]


def decide(validation: Mapping[str, Any] | None, same: SameRows, params: RetrainParams) -> Decision:
    """Apply RULE to the same-rows comparison `same` (base = champion, head = challenger)."""
    params.check()
    reasons = validation_reasons(validation)
    guarded = []
    for key in params.guarded_metrics:
        m = same.get(key)
        worse_by = round(-m.difference * direction(key), 6)
        regressed = worse_by > params.tolerance
        guarded.append(
            Guard(key, m.base, m.head, m.difference, m.lo, m.hi, max(0.0, worse_by), regressed)
        )
        if regressed:
            reasons.append(
                f"{key} of the new model is worse by {worse_by:.6g} on the same {same.rows} "
                f"films ({m.base:.6g} -> {m.head:.6g}; {same.level:.0%} interval of the "
                f"difference {m.lo:+.6g} to {m.hi:+.6g}), more than the tolerance "
                f"{params.tolerance:g}"
            )
    action: Literal["commit", "review"] = "review" if reasons else "commit"
    return Decision(action, tuple(reasons), tuple(guarded), params.tolerance)
