"""How the train hyperparameters in params.yaml were chosen: a small grid scored by an
expanding-window backtest over the last train years only (never the test period).

    python -m scripts.tune --train data/prepared/train.parquet --years 2001 2002 2003 2004 2005

Prints one line per candidate (mean ROC AUC, log loss, RMSLE over the years), best first.
"""

from __future__ import annotations

import argparse
import itertools
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from stages.core.cli import run
from stages.core.params import load_section
from stages.model.fit import expanding_window, single_thread
from stages.model.metrics import rmse_log
from stages.model.params import TrainParams

log = logging.getLogger(__name__)

GRID: dict[str, list[Any]] = {
    "max_iter": [60, 150],
    "max_leaf_nodes": [4, 8, 16],
    "min_samples_leaf": [30, 80],
    "l2_regularization": [1.0, 10.0],
}


def score(df: pd.DataFrame, years: Sequence[int], params: TrainParams) -> tuple[float, ...]:
    """Mean over years of (ROC AUC, log loss, RMSLE), each year predicted from earlier ones."""
    pred = expanding_window(df, years, params)
    rows = []
    for _, p in pred.groupby("year"):
        rows.append(
            (
                skm.roc_auc_score(p["success"], p["proba"]),
                skm.log_loss(p["success"], p["proba"], labels=[0, 1]),
                rmse_log(p["log_revenue"].to_numpy(), p["pred_log_revenue"].to_numpy()),
            )
        )
    return tuple(float(x) for x in np.mean(rows, axis=0))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--train", type=Path, required=True, help="the train split only")
    parser.add_argument("--years", type=int, nargs="+", required=True)
    args = parser.parse_args(argv)
    base = load_section(TrainParams, "train", args.params)
    df = pd.read_parquet(args.train)
    results = []
    with single_thread():
        for values in itertools.product(*GRID.values()):
            params = replace(base, **dict(zip(GRID, values, strict=True)))
            results.append((score(df, args.years, params), dict(zip(GRID, values, strict=True))))
    for (auc, ll, rm), cand in sorted(results, key=lambda r: -r[0][0]):
        print(f"roc_auc {auc:.4f} log_loss {ll:.4f} rmsle {rm:.4f} {cand}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
