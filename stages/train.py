"""DVC stage `train`: fit the pre-release feature pipeline, both heads and the baselines."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from stages.core.cli import run
from stages.core.io import parquet_frame, staged_outputs
from stages.core.params import load_section
from stages.core.pushgateway import record
from stages.model.artifact import save_model
from stages.model.fit import single_thread, train
from stages.model.params import TrainParams

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    args = parser.parse_args(argv)
    params = load_section(TrainParams, "train", args.params)

    frame = parquet_frame(args.train)
    with single_thread():
        model = train(frame, params)
    with staged_outputs(args.model) as (model_path,):
        save_model(model_path, model)
    record(rows=model.train_rows)
    log.info(
        "train: fitted on %s rows, threshold %.4f from out-of-time years %s, saved %s",
        model.train_rows,
        model.threshold,
        list(model.threshold_years),
        args.model,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
