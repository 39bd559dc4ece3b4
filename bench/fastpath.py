"""Benchmark of the fast path's tree evaluators against sklearn's, by batch size.

For batches of 1 to 8,192 validated movies (bench.serve's generator), the CPU time of both
heads' raw scores by `_Forest` (all trees walked at once), `_Tables` (per-column leaf-mask
tables) and sklearn's own per-tree `TreePredictor.predict` on one OpenMP thread (what
HistGradientBoosting's predict runs, minus its preprocessing). Medians of --runs; CPU time
(process_time), so neighbours on the machine matter less than for wall time. The crossover
of the first two sets FOREST_MAX_ROWS in stages/scoring/fastpath.py.

    python -m bench fastpath [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from bench.serve import ROOT, write_movies
from tests.conftest import sklearn_raw

SIZES = (1, 16, 64, 256, 1024, 8192)


def cpu_ms(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return 1000 * statistics.median(times)


def sklearn_both(fast: Any, enc: np.ndarray) -> list[np.ndarray]:
    return [sklearn_raw(head.estimator, enc) for head in (fast.classifier, fast.regressor)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    from stages.model.artifact import load_model
    from stages.predict import read_chunks, validate_chunk
    from stages.scoring.score import FAST_PATH, known_genres, prepare_model, shared_features

    model = prepare_model(load_model(ROOT / "models" / "model.skops"))
    fast = model[FAST_PATH]
    if fast is None:
        raise SystemExit("fastpath: the model has no verified fast path")
    with tempfile.TemporaryDirectory() as tmp:
        src = write_movies(Path(tmp) / "movies.jsonl", max(SIZES))
        chunk = validate_chunk(known_genres(model), next(read_chunks(src, size=max(SIZES))))
    enc = fast.classifier.encode(shared_features(model).transform_arrays(chunk.columns))
    print(
        f"{'rows':>6} {'forest ms':>10} {'tables ms':>10} {'sklearn ms':>11} {'sklearn/tables':>15}"
    )
    evaluators: dict[str, Callable[[Any, np.ndarray], Any]] = {
        "forest": lambda heads, x: heads.raw(x, "forest"),
        "tables": lambda heads, x: heads.raw(x, "tables"),
        "sklearn": sklearn_both,
    }
    with threadpool_limits(1, user_api="openmp"):
        for n in SIZES:
            ms = {
                name: cpu_ms(partial(fn, fast, enc[:n]), args.runs)
                for name, fn in evaluators.items()
            }
            print(
                f"{n:>6} {ms['forest']:>10.2f} {ms['tables']:>10.2f} {ms['sklearn']:>11.2f} "
                f"{ms['sklearn'] / ms['tables']:>15.1f}"
            )
    print(f"(CPU-time medians of {args.runs} runs, both heads, one OpenMP thread)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
