"""Benchmark of `collect` (source tmdb) against the local fake TMDB server.

Measures, as the issue asks: the request rate of a cold collection as a share of
`rate_limit` (server-side clock, 20 ms added latency), the time and detail requests of an
unchanged rerun (median of several), and the peak RSS of the stage with a large cache.

    python -m bench.collect_tmdb            # full: 10,000 movies at 40/s (~5 min), 100,000 cached
    python -m bench.collect_tmdb --quick    # 2,000 movies, 20,000 cached (make bench)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from tests.tmdb_server import FakeTmdb, make_catalog

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-token-not-a-secret"
GTE, LTE = "2000-01-01", "2009-12-31"


def write_params(tmp: Path, rate_limit: float, concurrency: int) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["collect"].update(
        source="tmdb",
        release_date_gte=GTE,
        release_date_lte=LTE,
        rate_limit=rate_limit,
        concurrency=concurrency,
        languages=[],
        regions=[],
    )
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def run_collect(tmp: Path, params: Path, url: str) -> tuple[float, float, dict[str, Any]]:
    """Run the stage once; return (wall seconds, peak RSS MB of the stage process, summary)."""
    cmd = [
        sys.executable,
        "-m",
        "stages.collect",
        "--params",
        str(params),
        "--sample",
        str(ROOT / "data" / "sample" / "movies.json.gz"),
        "--output",
        str(tmp / "out" / "movies.jsonl"),
        "--summary",
        str(tmp / "out" / "summary.json"),
        "--cache",
        str(tmp / "cache"),
    ]
    env = dict(os.environ, TMDB_API_BASE_URL=url, TMDB_API_TOKEN=SECRET, PYTHONPATH=str(ROOT))
    env.pop("TMDB_API_KEY", None)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    # wait4 gives this child's own rusage: its peak RSS, not the server's or another run's.
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    err = proc.stderr.read() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"collect failed ({proc.returncode}):\n{err[-3000:]}")
    # The run's traffic (requests, skips) is kept beside the cache, not in the DVC output.
    summary = json.loads((tmp / "cache" / "last_run.json").read_text())
    return wall, usage.ru_maxrss / 1024, summary | summary["run"]


def catalog(n: int) -> list[Any]:
    # No adult films: every generated film is in the collected set.
    return [dataclasses.replace(f, adult=False) for f in make_catalog(n, GTE, LTE, seed=11)]


def bench_rate(movies: int, latency_ms: float, rate: float, conc: int, reruns: int) -> dict:
    with (
        tempfile.TemporaryDirectory() as d,
        FakeTmdb(catalog(movies), SECRET, latency_ms / 1000) as tm,
    ):
        tmp = Path(d)
        params = write_params(tmp, rate, conc)
        wall, rss, s = run_collect(tmp, params, tm.url)
        times = sorted(t for t, _, _ in tm.requests())
        server_rate = (len(times) - 1) / (times[-1] - times[0])
        cold = {
            "movies": s["movies"],
            "requests": s["requests"],
            "wall_s": round(wall, 1),
            "server_rate_per_s": round(server_rate, 2),
            "pct_of_limit": round(100 * server_rate / rate, 1),
            "max_requests_in_any_1s": tm.max_in_window(),
            "peak_rss_mb": round(rss, 1),
        }
        n = len(tm.requests("details"))
        walls, rsss = [], []
        for _ in range(reruns):
            w, r, s2 = run_collect(tmp, params, tm.url)
            walls.append(w)
            rsss.append(r)
        rerun = {
            "runs": reruns,
            "median_wall_s": round(statistics.median(walls), 2),
            "max_wall_s": round(max(walls), 2),
            "detail_requests": len(tm.requests("details")) - n,
            "requests_last_run": s2["requests"],
            "movies": s2["movies"],
        }
    return {"cold": cold, "unchanged_rerun": rerun}


def bench_memory(movies: int, rate: float, conc: int) -> dict:
    with tempfile.TemporaryDirectory() as d, FakeTmdb(catalog(movies), SECRET) as tm:
        tmp = Path(d)
        params = write_params(tmp, rate, conc)
        wall, rss_fill, s = run_collect(tmp, params, tm.url)
        wall2, rss_rerun, s2 = run_collect(tmp, params, tm.url)
        size = sum(p.stat().st_size for p in (tmp / "cache").iterdir())
        return {
            "movies": s["movies"],
            "fill_wall_s": round(wall, 1),
            "fill_peak_rss_mb": round(rss_fill, 1),
            "rerun_wall_s": round(wall2, 2),
            "rerun_peak_rss_mb": round(rss_rerun, 1),
            "rerun_detail_requests": s2["requests_by_kind"]["details"],
            "cache_mb": round(size / 2**20, 1),
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="2,000 movies and 20,000 cached")
    p.add_argument("--movies", type=int, default=10_000)
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--rate-limit", type=float, default=40.0)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--reruns", type=int, default=3)
    p.add_argument("--large", type=int, default=100_000, help="cached movies for the RSS figure")
    p.add_argument("--large-rate", type=float, default=5000.0)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "collect_tmdb.json")
    a = p.parse_args(argv)
    if a.quick:
        a.movies, a.large = 2_000, 20_000
    result = {
        "params": {k: v for k, v in vars(a).items() if k != "out"} | {"out": str(a.out)},
        **bench_rate(a.movies, a.latency_ms, a.rate_limit, a.concurrency, a.reruns),
        "large_cache": bench_memory(a.large, a.large_rate, 16) if a.large else None,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
