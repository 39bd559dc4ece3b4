"""The retrain gate's decision rules."""

from __future__ import annotations

import pytest

from stages.compare.gate import EXIT_COMMIT, EXIT_GATED, RetrainParams, decide
from stages.core.cli import UserError

PARAMS = RetrainParams(guarded_metrics=("roc_auc", "log_loss"), tolerance=0.01)


def test_decide_rules() -> None:
    ok = {"passed": True}
    base = {"roc_auc": 0.70, "log_loss": 0.50, "rows": 10}
    assert decide(ok, base, {**base, "rows": 12}, PARAMS).action == "commit"
    within = {"roc_auc": 0.695, "log_loss": 0.505, "rows": 10}
    assert decide(ok, base, within, PARAMS).action == "commit"
    better = {"roc_auc": 0.80, "log_loss": 0.40, "rows": 10}
    assert decide(ok, base, better, PARAMS).exit_code == EXIT_COMMIT

    worse = decide(ok, base, {"roc_auc": 0.70, "log_loss": 0.52, "rows": 10}, PARAMS)
    assert worse.exit_code == EXIT_GATED
    assert worse.reasons == (
        "log_loss is worse by 0.02 (0.5 -> 0.52), more than the tolerance 0.01",
    )
    assert decide({"passed": False}, base, base, PARAMS).reasons == (
        "data validation did not pass",
    )
    assert "the base has no metrics to compare with" in decide(ok, None, base, PARAMS).reasons
    with pytest.raises(UserError, match="direction is unknown"):
        decide(ok, base, base, RetrainParams(guarded_metrics=("rows",), tolerance=0.0))
