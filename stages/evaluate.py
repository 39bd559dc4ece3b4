"""DVC stage `evaluate`: score the chronological holdout against the baselines; write metrics,
plot data (CSV for `dvc plots`, PNG for reports) and the model card."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import Field
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.inspection import permutation_importance

from stages.core.cli import UserError, read_input, run
from stages.core.io import parquet_frame, staged_outputs, write_csv, write_json, write_text
from stages.core.params import load_section
from stages.core.pushgateway import record
from stages.model.artifact import Model, load_model
from stages.model.card import model_card
from stages.model.fit import single_thread
from stages.model.metrics import DIGITS, bootstrap_auc_ci, classification_metrics, r, rmsle
from stages.model.params import MAX_SEED
from stages.model.plots import write_pngs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluateParams:
    """The `evaluate` section; each range is declared here and checked at load."""

    seed: Annotated[int, Field(ge=0, le=MAX_SEED)]
    bootstrap_rounds: Annotated[int, Field(ge=1)]  # resamples for the holdout ROC AUC interval
    # shuffles per feature for permutation importance
    permutation_repeats: Annotated[int, Field(ge=1)]
    calibration_bins: Annotated[int, Field(ge=2)]
    top_features: Annotated[int, Field(ge=1)]  # listed in the model card


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, Any]
    roc: pd.DataFrame
    pr: pd.DataFrame
    confusion: pd.DataFrame


def evaluate(y_true: np.ndarray, proba: np.ndarray, threshold: float) -> Evaluation:
    """Metrics and curve data of P(success) on the test period."""
    pred = (proba >= threshold).astype(int)
    metrics = classification_metrics(y_true, proba, threshold)
    fpr, tpr, roc_thr = skm.roc_curve(y_true, proba, drop_intermediate=True)
    # roc_curve starts at threshold +inf, which vega cannot parse: clip it to 1.
    roc = pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.minimum(roc_thr, 1.0)})
    precision, recall, pr_thr = skm.precision_recall_curve(y_true, proba)
    pr = pd.DataFrame(
        {"recall": recall[:-1], "precision": precision[:-1], "threshold": pr_thr}
    ).iloc[::-1]
    confusion = pd.DataFrame(
        {
            "actual": np.where(y_true == 1, "success", "flop"),
            "predicted": np.where(pred == 1, "success", "flop"),
        }
    ).sort_values(["actual", "predicted"], kind="mergesort")
    return Evaluation(
        metrics=metrics,
        roc=roc.round(DIGITS),
        pr=pr.round(DIGITS).reset_index(drop=True),
        confusion=confusion.reset_index(drop=True),
    )


def calibration(y_true: np.ndarray, proba: np.ndarray, bins: int) -> pd.DataFrame:
    """Reliability curve: observed success rate per quantile bin of predicted probability."""
    observed, predicted = calibration_curve(y_true, proba, n_bins=bins, strategy="quantile")
    return pd.DataFrame({"predicted": predicted, "observed": observed}).round(DIGITS)


def importance(model: Model, X: np.ndarray, y: np.ndarray, params: EvaluateParams) -> pd.DataFrame:
    """Permutation importance (drop in holdout ROC AUC) of each model feature."""
    res = permutation_importance(
        model.classifier,
        X,
        y,
        scoring="roc_auc",
        n_repeats=params.permutation_repeats,
        random_state=params.seed,
    )
    frame = pd.DataFrame(
        {
            "feature": list(model.features.get_feature_names_out()),
            "importance": res.importances_mean,
            "std": res.importances_std,
        }
    ).round(DIGITS)
    return frame.sort_values(["importance", "feature"], ascending=[False, True]).reset_index(
        drop=True
    )


def baselines(model: Model, test: pd.DataFrame) -> dict[str, Any]:
    """The baselines fitted by train on the same train split, scored on the same holdout."""
    base = model.baselines
    y = test["success"].to_numpy()
    majority = base.majority.predict_proba(test[["budget"]])[:, 1]
    logreg = base.logreg_budget.predict_proba(test)[:, 1]
    return {
        "baseline_majority": classification_metrics(y, majority, base.majority_threshold),
        "baseline_logreg_budget": classification_metrics(y, logreg, base.logreg_budget_threshold),
        "baseline_linear_budget": {
            "rmsle": r(rmsle(test["revenue"].to_numpy(float), base.linear_budget.predict(test)))
        },
    }


def backtest_frame(backtest: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for year, m in sorted(backtest["by_year"].items()):
        rows.append(
            {
                "year": int(year),
                "roc_auc": m["roc_auc"],
                "baseline_logreg_budget_roc_auc": m["baseline_logreg_budget"]["roc_auc"],
                "baseline_majority_roc_auc": m["baseline_majority"]["roc_auc"],
                "rmsle": m["rmsle"],
                "baseline_linear_budget_rmsle": m["baseline_linear_budget"]["rmsle"],
            }
        )
    return pd.DataFrame(rows)


def read_json(path: Path) -> dict[str, Any]:
    raw = read_input(path, "a JSON file", "not found; run the earlier stages first (dvc repro)")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path}: not valid UTF-8 at byte offset {exc.start}; re-run dvc repro"
        ) from None
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}, byte offset {exc.pos}); "
            "re-run dvc repro"
        ) from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object; re-run dvc repro")
    return data


def run_evaluation(
    model: Model,
    test: pd.DataFrame,
    backtest: dict[str, Any],
    params: EvaluateParams,
) -> tuple[Evaluation, dict[str, pd.DataFrame]]:
    """All holdout numbers and plot frames; pure apart from fitting nothing."""
    y = test["success"].to_numpy()
    X = model.encode(test)  # once: scoring and permutation share it
    proba = model.success_probability(X)
    result = evaluate(y, proba, model.threshold)
    m = result.metrics
    m["roc_auc_ci95"] = bootstrap_auc_ci(y, proba, params.bootstrap_rounds, params.seed)
    m["rmsle"] = r(rmsle(test["revenue"].to_numpy(float), model.log_revenue(X)))
    m["train_rows"] = model.train_rows
    m.update(baselines(model, test))
    m["backtest"] = backtest
    frames = {
        "roc": result.roc,
        "pr": result.pr,
        "confusion": result.confusion,
        "calibration": calibration(y, proba, params.calibration_bins),
        "importance": importance(model, X, y, params),
        "backtest": backtest_frame(backtest),
    }
    return result, frames


HEADLINE: tuple[str, ...] = ("roc_auc", "pr_auc", "log_loss", "brier", "f1", "precision")
HEADLINE += ("recall", "accuracy", "threshold", "rows", "base_rate", "rmsle", "train_rows")


def headline(m: dict[str, Any]) -> dict[str, Any]:
    """metrics.json: one flat level, so `dvc exp show` has a column per headline figure. The
    full tables (each baseline, the backtest by year) are in the model card and in the
    backtest stage's own metrics file."""
    out = {k: m[k] for k in HEADLINE}
    out["roc_auc_ci95_lo"], out["roc_auc_ci95_hi"] = (
        m["roc_auc_ci95"]["lo"],
        m["roc_auc_ci95"]["hi"],
    )
    for name in ("baseline_majority", "baseline_logreg_budget"):
        out[f"{name}_roc_auc"] = m[name]["roc_auc"]
    out["baseline_logreg_budget_log_loss"] = m["baseline_logreg_budget"]["log_loss"]
    out["baseline_linear_budget_rmsle"] = m["baseline_linear_budget"]["rmsle"]
    for key in ("roc_auc", "rmsle"):
        out[f"backtest_mean_{key}"] = m["backtest"]["mean"][key]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--backtest", type=Path, required=True, help="backtest stage output")
    parser.add_argument("--validation", type=Path, required=True, help="prepare's report")
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--plots", type=Path, required=True, help="folder for plot data + PNG")
    parser.add_argument("--card", type=Path, required=True)
    args = parser.parse_args(argv)
    params = load_section(EvaluateParams, "evaluate", args.params)

    # The cheap inputs first: a damaged one fails before the model is loaded.
    backtest, validation = read_json(args.backtest), read_json(args.validation)
    test = parquet_frame(args.test)
    model = load_model(args.model)
    with single_thread():
        result, frames = run_evaluation(model, test, backtest, params)
    top = frames["importance"].head(params.top_features)
    outs = staged_outputs(args.plots, args.card, args.metrics)
    with outs as (plots, card, metrics):
        for name, frame in frames.items():
            write_csv(plots / f"{name}.csv", frame)
        write_pngs(plots, frames, result.metrics)
        write_text(card, model_card(result.metrics, model, validation, top))
        write_json(metrics, headline(result.metrics))
    record(rows=result.metrics["rows"], metrics=headline(result.metrics))
    log.info(
        "evaluate: roc_auc=%s %s rmsle=%s on %s rows; params %s",
        result.metrics["roc_auc"],
        result.metrics["roc_auc_ci95"],
        result.metrics["rmsle"],
        result.metrics["rows"],
        asdict(params),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
