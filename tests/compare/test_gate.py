"""The retrain gate's rule on a same-rows comparison of two models."""

from __future__ import annotations

from typing import Any

import pytest

from stages.compare.gate import (
    COMPARED,
    EXIT_COMMIT,
    EXIT_GATED,
    RetrainParams,
    decide,
    validation_reasons,
)
from stages.compare.paired import METRICS, Paired, SameRows
from stages.core.cli import UserError

PARAMS = RetrainParams(guarded_metrics=("roc_auc", "log_loss"), tolerance=0.01)
PASSED = {"passed": True, "checks": {"enough_test_rows": True}}


def same(**metrics: tuple[float, float, float, float]) -> SameRows:
    """A comparison of 200 rows: metric=(base, head, lo, hi); unnamed metrics unchanged."""
    rows = []
    for name in COMPARED:
        base, head, lo, hi = metrics.get(name, (0.5, 0.5, 0.0, 0.0))
        rows.append(Paired(name, base, head, round(head - base, 6), lo, hi))
    return SameRows(rows=200, base_rate=0.4, metrics=tuple(rows), rounds=100, resamples=100, seed=1)


def test_compared_metrics_are_the_ones_paired_computes() -> None:
    assert tuple(METRICS) == COMPARED


def test_commits_a_better_model() -> None:
    decision = decide(PASSED, same(roc_auc=(0.70, 0.75, 0.01, 0.09)), PARAMS)
    assert (decision.action, decision.exit_code, decision.reasons) == ("commit", EXIT_COMMIT, ())


def test_commits_within_tolerance_even_if_the_interval_reaches_beyond_it() -> None:
    # point -0.009 is within 0.01; the interval's lower end -0.04 does not decide
    decision = decide(PASSED, same(roc_auc=(0.700, 0.691, -0.04, 0.02)), PARAMS)
    assert decision.action == "commit"
    assert decision.guarded[0].worse_by == pytest.approx(0.009)


def test_gates_worse_beyond_tolerance_even_if_the_interval_reaches_back() -> None:
    # point -0.02; the interval's upper end +0.01 does not rescue it
    decision = decide(PASSED, same(roc_auc=(0.70, 0.68, -0.05, 0.01)), PARAMS)
    assert decision.exit_code == EXIT_GATED
    assert decision.reasons == (
        "roc_auc of the new model is worse by 0.02 on the same 200 films (0.7 -> 0.68; "
        "95% interval of the difference -0.05 to +0.01), more than the tolerance 0.01",
    )


def test_lower_is_better_for_log_loss() -> None:
    decision = decide(PASSED, same(log_loss=(0.50, 0.52, 0.01, 0.03)), PARAMS)
    assert decision.action == "review"
    assert [(g.metric, g.worse_by, g.regressed) for g in decision.guarded] == [
        ("roc_auc", 0.0, False),
        ("log_loss", 0.02, True),
    ]


def test_unguarded_metric_does_not_gate() -> None:
    assert decide(PASSED, same(brier=(0.20, 0.30, 0.05, 0.15)), PARAMS).action == "commit"


@pytest.mark.parametrize(
    ("validation", "reason"),
    [
        (None, "data validation did not pass: no validation report"),
        (
            {"passed": False, "checks": {"enough_test_rows": False, "enough_train_rows": True}},
            "data validation did not pass: enough_test_rows",
        ),
        ({"passed": "yes"}, "data validation did not pass: passed is not true"),
    ],
    ids=["missing", "failed-check", "not-a-bool"],
)
def test_failed_validation_gates(validation: dict[str, Any] | None, reason: str) -> None:
    assert validation_reasons(validation) == [reason]
    assert decide(validation, same(), PARAMS).reasons == (reason,)


def test_unknown_guarded_metric_is_a_user_error() -> None:
    with pytest.raises(UserError) as err:
        RetrainParams(guarded_metrics=("f1",), tolerance=0.01).check()
    assert str(err.value) == (
        "params.yaml: retrain.guarded_metrics has 'f1'; the same-rows comparison computes "
        "roc_auc, pr_auc, log_loss, brier"
    )
