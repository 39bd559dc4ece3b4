from __future__ import annotations

import numpy as np

from stages.evaluate import evaluate


def test_perfect_scores_give_perfect_metrics() -> None:
    y = np.array([0, 0, 1, 1])
    res = evaluate(y, np.array([0.1, 0.2, 0.8, 0.9]), threshold=0.5)
    assert res.metrics["roc_auc"] == 1.0
    assert res.metrics["f1"] == 1.0
    assert res.metrics["accuracy"] == 1.0
    assert res.metrics["rows"] == 4
    assert res.metrics["base_rate"] == 0.5


def test_threshold_moves_predictions() -> None:
    y = np.array([0, 1, 1])
    res = evaluate(y, np.array([0.4, 0.45, 0.9]), threshold=0.42)
    assert res.metrics["recall"] == 1.0
    assert res.metrics["precision"] == 1.0


def test_curves_have_no_infinite_thresholds() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    res = evaluate(y, rng.random(200), threshold=0.5)
    assert np.isfinite(res.roc.to_numpy(dtype=float)).all()
    assert np.isfinite(res.pr.to_numpy(dtype=float)).all()


def test_confusion_has_one_row_per_film() -> None:
    y = np.array([0, 1, 1, 0])
    res = evaluate(y, np.array([0.9, 0.9, 0.1, 0.1]), threshold=0.5)
    pairs = list(res.confusion.itertuples(index=False, name=None))
    assert pairs == [
        ("flop", "flop"),
        ("flop", "success"),
        ("success", "flop"),
        ("success", "success"),
    ]
