"""DVC stage `train`: fit the pre-release feature pipeline and classifier on the train split."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

from stages.lib.cli import UserError, run
from stages.lib.features import MovieFeatures
from stages.lib.model_io import save_model
from stages.lib.params import load_section
from stages.lib.pushgateway import record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainParams:
    seed: int
    learning_rate: float
    max_iter: int
    max_leaf_nodes: int
    min_samples_leaf: int
    l2_regularization: float
    top_k_categories: int
    min_category_count: int
    threshold: float


def build_pipeline(params: TrainParams, task: str = "classify") -> Pipeline:
    """Features + gradient boosting; `classify` predicts success, `regress` log1p(revenue)."""
    estimator = (
        HistGradientBoostingClassifier if task == "classify" else HistGradientBoostingRegressor
    )
    return Pipeline(
        [
            (
                "features",
                MovieFeatures(top_k=params.top_k_categories, min_count=params.min_category_count),
            ),
            (
                "model",
                estimator(
                    learning_rate=params.learning_rate,
                    max_iter=params.max_iter,
                    max_leaf_nodes=params.max_leaf_nodes,
                    min_samples_leaf=params.min_samples_leaf,
                    l2_regularization=params.l2_regularization,
                    categorical_features="from_dtype",
                    early_stopping=False,
                    random_state=params.seed,
                ),
            ),
        ]
    )


def train(df: pd.DataFrame, params: TrainParams) -> dict[str, Any]:
    """Fit on the train split; return the artefact that evaluate and predict load."""
    if df["success"].nunique() < 2:
        raise UserError("train: the train split has a single class; widen the data range")
    clf = build_pipeline(params).fit(df, df["success"].to_numpy())
    reg = build_pipeline(params, "regress").fit(df, np.log1p(df["revenue"].to_numpy(float)))
    return {
        "classifier": clf,
        "regressor": reg,
        "threshold": params.threshold,
        "params": asdict(params),
        "train_rows": len(df),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    args = parser.parse_args(argv)
    params = load_section(TrainParams, "train", args.params)

    model = train(pd.read_parquet(args.train), params)
    save_model(args.model, model)
    record(rows=model["train_rows"])
    log.info("train: fitted on %s rows, saved %s", model["train_rows"], args.model)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
