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


# --- holdout evaluation with baselines, interval, plots and model card ---------------------

import json  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from sklearn import metrics as skm  # noqa: E402

from stages.backtest import backtest  # noqa: E402
from stages.evaluate import EvaluateParams, run_evaluation  # noqa: E402
from stages.model.card import model_card  # noqa: E402
from stages.model.metrics import bootstrap_auc_ci, rank_auc  # noqa: E402
from stages.model.plots import write_pngs  # noqa: E402
from stages.prepare import prepare  # noqa: E402
from stages.train import train  # noqa: E402
from tests.conftest import SNAPSHOT, fixture_split, make_record  # noqa: E402
from tests.stages.test_train import PARAMS  # noqa: E402

EVAL = EvaluateParams(
    seed=3, bootstrap_rounds=200, permutation_repeats=2, calibration_bins=5, top_features=5
)
LOWER_IS_BETTER = {"log_loss", "brier", "rmsle"}


def test_rank_auc_equals_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    score = np.round(rng.random(300), 1)  # many ties
    assert rank_auc(y, score) == pytest.approx(skm.roc_auc_score(y, score))


def test_bootstrap_interval_is_seeded_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 400)
    proba = np.clip(y * 0.3 + rng.random(400) * 0.7, 0, 1)
    ci = bootstrap_auc_ci(y, proba, rounds=300, seed=5)
    assert ci == bootstrap_auc_ci(y, proba, rounds=300, seed=5)
    assert ci["lo"] < skm.roc_auc_score(y, proba) < ci["hi"]
    assert ci != bootstrap_auc_ci(y, proba, rounds=300, seed=6)


@pytest.fixture(scope="module")
def evaluated() -> tuple[dict[str, Any], dict[str, Any], dict[str, pd.DataFrame], dict[str, Any]]:
    records = [make_record(i) for i in range(1, 301)]
    split = prepare(records, replace(fixture_split(), min_budget=1, min_revenue=1), SNAPSHOT)
    model = train(split.train, PARAMS)
    bt = backtest(pd.concat([split.train, split.test], ignore_index=True), PARAMS, n_years=2)
    result, frames = run_evaluation(model, split.test, bt, EVAL)
    return model, result.metrics, frames, split.report


def _leaves(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_leaves(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def test_metrics_name_model_and_baselines_plainly(evaluated: Any) -> None:
    _, m, _, _ = evaluated
    for key in ("roc_auc", "pr_auc", "log_loss", "brier", "f1", "precision", "recall", "rmsle"):
        assert isinstance(m[key], float), key
    assert m["roc_auc_ci95"]["lo"] <= m["roc_auc"] <= m["roc_auc_ci95"]["hi"]
    assert m["baseline_majority"]["roc_auc"] == 0.5
    assert m["baseline_majority"]["recall"] in (0.0, 1.0)  # it predicts the majority class
    assert "roc_auc" in m["baseline_logreg_budget"]
    assert "rmsle" in m["baseline_linear_budget"]
    assert {"mean", "by_year"} <= set(m["backtest"])
    leaves = _leaves(m)
    assert all(np.isfinite(v) for v in leaves.values())
    # every baseline figure sits under a key containing "baseline"
    names = {path.rsplit(".", 1)[-1] for path in leaves}
    assert names & LOWER_IS_BETTER == LOWER_IS_BETTER
    json.dumps(m, allow_nan=False)


def test_plot_frames_are_finite(evaluated: Any) -> None:
    _, _, frames, _ = evaluated
    assert set(frames) == {"roc", "pr", "confusion", "calibration", "importance", "backtest"}
    for name in ("roc", "pr", "calibration", "backtest"):
        assert np.isfinite(frames[name].to_numpy(dtype=float)).all(), name
    assert list(frames["backtest"]["year"]) == [2008, 2009]
    assert len(frames["importance"]) == len(frames["importance"]["feature"].unique())


def test_pngs_are_byte_identical_across_runs(evaluated: Any, tmp_path: Path) -> None:
    _, m, frames, _ = evaluated
    write_pngs(tmp_path / "a", frames, m)
    write_pngs(tmp_path / "b", frames, m)
    pngs = sorted(p.name for p in (tmp_path / "a").glob("*.png"))
    assert pngs == [f"{n}.png" for n in sorted(frames)]
    for name in pngs:
        data = (tmp_path / "a" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert data == (tmp_path / "b" / name).read_bytes(), name


def test_model_card_has_every_section(evaluated: Any) -> None:
    model, m, frames, report = evaluated
    card = model_card(m, model, report, frames["importance"].head(3))
    for heading in (
        "## Intended use",
        "## Data",
        "## Label",
        "## Holdout metrics",
        "## Backtest",
        "## Top features",
        "## Params",
        "## Limitations",
    ):
        assert heading in card
    assert f"{m['roc_auc_ci95']['lo']} to {m['roc_auc_ci95']['hi']}" in card
    assert "revenue ≥ 2.0 × budget" in card
    assert frames["importance"]["feature"].iloc[0] in card
