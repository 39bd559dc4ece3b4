"""DVC stage `backtest`: expanding-window backtest by release year, model vs baselines.

For each of the last `backtest.years` release years Y: fit on every film released before Y
(with the train stage's hyperparameters, read from the model artefact), predict year Y.
The decision threshold for Y is chosen, as in training, on out-of-time predictions of the
`threshold_years` years before Y, never on Y itself.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from pydantic import Field

from stages.core.cli import UserError, run
from stages.core.io import parquet_frame, staged_outputs, write_json
from stages.core.params import load_section
from stages.model.artifact import load_model
from stages.model.fit import expanding_window, single_thread, thresholds_from
from stages.model.metrics import classification_metrics, mean_of, r, rmse_log
from stages.model.params import TrainParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BacktestParams:
    """The `backtest` section; the range is declared here and checked at load (the upper
    bound depends on the data: backtest() checks it)."""

    years: Annotated[
        int, Field(ge=1)
    ]  # how many of the last release years are each predicted from earlier years


def period_metrics(pred: pd.DataFrame, thresholds: dict[str, float]) -> dict[str, Any]:
    """Model and baseline metrics of one period's predictions (from predict_all)."""
    y = pred["success"].to_numpy()
    log_revenue = pred["log_revenue"].to_numpy()
    out = classification_metrics(y, pred["proba"].to_numpy(), thresholds["model"])
    out["rmsle"] = r(rmse_log(log_revenue, pred["pred_log_revenue"].to_numpy()))
    out["baseline_majority"] = classification_metrics(
        y, pred["proba_majority"].to_numpy(), thresholds["majority"]
    )
    out["baseline_logreg_budget"] = classification_metrics(
        y, pred["proba_logreg_budget"].to_numpy(), thresholds["logreg_budget"]
    )
    out["baseline_linear_budget"] = {
        "rmsle": r(rmse_log(log_revenue, pred["pred_log_revenue_linear_budget"].to_numpy()))
    }
    return out


def backtest(df: pd.DataFrame, params: TrainParams, n_years: int) -> dict[str, Any]:
    """Per-year and mean metrics of the model and the baselines over the last n_years."""
    all_years = sorted(set(pd.to_datetime(df["release_date"]).dt.year.tolist()))
    if n_years >= len(all_years):
        raise UserError(
            f"params.yaml: backtest.years is {n_years}; use 1 to {len(all_years) - 1} "
            f"(the data has films from {len(all_years)} years)"
        )
    test_years = all_years[-n_years:]
    first = all_years.index(test_years[0])
    k = params.threshold_years
    pre = expanding_window(df, all_years[max(1, first - k) : first], params, regress=False)
    preds = expanding_window(df, test_years, params, regress=True)
    oot = pd.concat([pre, preds.drop(columns=_REGRESSION_COLUMNS)], ignore_index=True)
    by_year = {}
    for y in test_years:
        now = preds[preds["year"] == y]
        if now.empty or now["success"].nunique() < 2:
            log.warning("backtest: skipping %s (needs films of both classes)", y)
            continue
        idx = all_years.index(y)
        earlier = oot[oot["year"].isin(all_years[max(0, idx - k) : idx])]
        thresholds = (
            thresholds_from(earlier)
            if not earlier.empty
            else {"model": 0.5, "logreg_budget": 0.5, "majority": 0.5}
        )
        by_year[str(y)] = period_metrics(now, thresholds)
        by_year[str(y)]["train_rows"] = int((pd.to_datetime(df["release_date"]).dt.year < y).sum())
    if not by_year:
        raise UserError("backtest: no backtest year has films of both classes")
    mean = mean_of([{k: v for k, v in m.items() if k != "train_rows"} for m in by_year.values()])
    return {"by_year": by_year, "mean": mean}


_REGRESSION_COLUMNS = ["log_revenue", "pred_log_revenue", "pred_log_revenue_linear_budget"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", type=Path, required=True, help="its params are refitted")
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True, help="backtest results (JSON)")
    args = parser.parse_args(argv)
    params = load_section(BacktestParams, "backtest", args.params)

    train_params = load_model(args.model).params
    df = pd.concat([parquet_frame(args.train), parquet_frame(args.test)], ignore_index=True)
    with single_thread():
        result = backtest(df, train_params, params.years)
    with staged_outputs(args.output) as (output,):
        write_json(output, result)
    log.info(
        "backtest: mean roc_auc %s (logreg budget %s), rmsle %s (linear budget %s) over %s",
        result["mean"]["roc_auc"],
        result["mean"]["baseline_logreg_budget"]["roc_auc"],
        result["mean"]["rmsle"],
        result["mean"]["baseline_linear_budget"]["rmsle"],
        sorted(result["by_year"]),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
