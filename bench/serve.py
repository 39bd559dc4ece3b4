"""Benchmark of the prediction service and the batch command, on loopback.

Starts `python -m stages.serve` (one uvicorn worker) on 127.0.0.1, drives single-movie
POST /predict with 4 and 16 concurrent keep-alive clients (one process each with
http.client: the load generator shares the machine, as in the targets; threads of one
process would measure their own waits for its GIL), and reports p50, p99, requests/s,
errors and the server's peak RSS, with the tree evaluator (FAST_PATH=1, the default) and
without it (FAST_PATH=0), interleaved run by run; then times `python -m stages.predict`
on generated JSONL files of 100,000 and 1,000,000 movies (default options, so the larger
file gets a worker process per core). Medians over --runs runs. Uses the model of `make
repro` (or MODEL_PATH).

    python -m bench serve [--runs 3] [--seconds 10] [--rows 100000 1000000]
                          [--only service|batch]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench._util import ROOT, timed

MOVIE = {
    "title": "Bench",
    "release_date": "2010-06-18",
    "budget": 40000000,
    "runtime": 110,
    "genres": ["Action", "Adventure"],
    "certification": "PG-13",
    "distributor": "Universal",
}
GENRES = ["Action", "Adventure", "Comedy", "Drama", "Horror", "Western"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, fast_path: bool = True) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        HOST="127.0.0.1",
        PORT=str(port),
        PYTHONPATH=str(ROOT),
        FAST_PATH=str(int(fast_path)),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "stages.serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server not ready within 60 s")


def client(port: int, stop: float, start: Any, out: Any) -> None:
    """One closed-loop client: sends the next request when the previous one answered, until
    `stop` (time.time()); puts (latencies in seconds, errors) on `out`."""
    body = json.dumps(MOVIE).encode()
    headers = {"content-type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    latencies: list[float] = []
    errors = 0
    start.wait()
    while time.time() < stop:
        t0 = time.perf_counter()
        try:
            conn.request("POST", "/predict", body, headers)
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 200
        except OSError:
            ok = False
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        latencies.append(time.perf_counter() - t0)
        errors += not ok
    conn.close()
    out.put((latencies, errors))


def load(port: int, clients: int, seconds: float) -> dict[str, float]:
    """`clients` client processes for `seconds` (after they are all connected)."""
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Barrier(clients + 1), ctx.Queue()
    stop = time.time() + seconds + 1.0  # the processes start within that second
    procs = [ctx.Process(target=client, args=(port, stop, start, out)) for _ in range(clients)]
    for p in procs:
        p.start()
    start.wait()
    t0 = time.time()
    results = [out.get() for _ in procs]
    elapsed = stop - t0
    for p in procs:
        p.join()
    lat = sorted(x for xs, _ in results for x in xs)
    return {
        "requests": len(lat),
        "errors": sum(e for _, e in results),
        "rps": len(lat) / elapsed,
        "p50_ms": 1000 * lat[len(lat) // 2],
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
    }


VARIANTS = {"fast": True, "public": False}  # FAST_PATH=1 (the default) and FAST_PATH=0


def bench_service(runs: int, seconds: float) -> dict[str, Any]:
    results: dict[str, list[dict[str, float]]] = {
        f"{v}_c{c}": [] for v in VARIANTS for c in (4, 16)
    }
    rss: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(runs):
        for variant, fast_path in VARIANTS.items():
            port = free_port()
            server = start_server(port, fast_path)
            try:
                proc = psutil.Process(server.pid)
                load(port, 4, 2)  # warm-up
                peak = 0.0
                for clients in (4, 16):
                    cpu0 = sum(proc.cpu_times()[:2])
                    r = load(port, clients, seconds)
                    # server CPU per request: a figure the neighbours' load does not inflate
                    r["server_cpu_ms_per_req"] = (
                        1000 * (sum(proc.cpu_times()[:2]) - cpu0) / r["requests"]
                    )
                    results[f"{variant}_c{clients}"].append(r)
                    peak = max(peak, proc.memory_info().rss / 2**20)
                rss[variant].append(peak)
            finally:
                server.terminate()
                server.wait(timeout=30)
    out: dict[str, Any] = {
        key: {m: statistics.median(r[m] for r in runs_) for m in runs_[0]}
        for key, runs_ in results.items()
    }
    for variant, peaks in rss.items():
        out[f"{variant}_rss_mb"] = statistics.median(peaks)
    return out


def write_movies(path: Path, rows: int, seed: int = 0) -> Path:
    """A JSONL file of `rows` valid movies (MOVIE with varied title, budget, date, genres)."""
    rng = random.Random(seed)
    with open(path, "w") as fh:
        for i in range(rows):
            movie = dict(
                MOVIE,
                title=f"F{i}",
                budget=rng.randint(1, 200) * 1_000_000,
                release_date=f"{rng.randint(1995, 2012)}-{rng.randint(1, 12):02d}-15",
                genres=rng.sample(GENRES, rng.randint(1, 2)),
            )
            fh.write(json.dumps(movie) + "\n")
    return path


def predict_command(src: Path, out: Path) -> tuple[float, float]:
    """(wall s, CPU s) of the real batch command, start-up included, default options."""
    times = timed(sys.executable, "-m", "stages.predict", "--input", src, "--output", out, cwd=ROOT)
    rejected = out.with_suffix(".rejected.csv").read_text()
    assert rejected == "row,reason\n", rejected  # every generated movie is valid
    return times


def startup_seconds() -> float:
    """Imports and the model load: what every scoring process pays before its first row."""
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import stages.predict; from stages.model.artifact import load_model; "
            "load_model('models/model.skops')",
        ],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        check=True,
    )
    return time.perf_counter() - t0


def bench_batch(runs: int, sizes: list[int]) -> dict[str, dict[str, float]]:
    """Per file size: medians over `runs`, the sizes interleaved (drift hits them alike)."""
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = {n: write_movies(Path(tmp) / f"movies-{n}.jsonl", n) for n in sizes}
        walls: dict[int, list[float]] = {n: [] for n in sizes}
        cpus: dict[int, list[float]] = {n: [] for n in sizes}
        startups = []
        for _ in range(runs):
            for n, src in files.items():
                wall, cpu = predict_command(src, Path(tmp) / "scores.csv")
                walls[n].append(wall)
                cpus[n].append(cpu)
            startups.append(startup_seconds())
        startup = statistics.median(startups)
        steps = stage_rows_per_s(files[min(sizes)], runs)
        for n in sizes:
            wall, cpu = statistics.median(walls[n]), statistics.median(cpus[n])
            out[str(n)] = {
                "wall_s": wall,
                "wall_min_s": min(walls[n]),
                "wall_max_s": max(walls[n]),
                "rows_per_s": n / wall,
                "startup_s": startup,
                "rows_per_s_after_startup": (
                    n / (wall - startup) if wall > startup else float("nan")
                ),
                "cpu_s": cpu,
                "rows_per_cpu_s": n / cpu,
                **{f"{key}_rows_per_s": rate for key, rate in steps.items()},
            }
    return out


def stage_rows_per_s(src: Path, runs: int) -> dict[str, float]:
    """Rows per second, in one process on one OpenMP thread (as the command runs), of each
    step of scoring the file's rows: parsing and validation, the features, and each head's
    public predict: what dominates the command's cost."""
    from threadpoolctl import threadpool_limits

    from stages.model.artifact import load_model
    from stages.scoring.batch import read_chunks, validate_chunk
    from stages.scoring.score import known_genres

    model = load_model(ROOT / "models" / "model.skops")
    raw = next(read_chunks(src, size=10**9))
    times: dict[str, list[float]] = {"validate": [], "features": [], "classifier": []}
    times["regressor"] = []
    with threadpool_limits(1, user_api="openmp"):
        for _ in range(runs):
            t0 = time.perf_counter()
            chunk = validate_chunk(known_genres(model), raw)
            t1 = time.perf_counter()
            X = model.encode(chunk.columns)
            t2 = time.perf_counter()
            model.success_probability(X)
            t3 = time.perf_counter()
            model.log_revenue(X)
            t4 = time.perf_counter()
            for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                times[key].append(dt)
    return {key: len(chunk.rows) / statistics.median(ts) for key, ts in times.items()}


def python_loop_seconds() -> float:
    """Seconds for 10M additions in a Python loop: how fast this machine is right now (it
    varies by 2x on the shared VMs here), to read the other figures against."""
    t0 = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[100_000, 1_000_000], help="batch file sizes"
    )
    parser.add_argument("--only", choices=["service", "batch"], help="one of the two parts")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    loop_s = python_loop_seconds()
    report: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "loadavg_1m_before": load_before,
        "python_loop_10m_s": loop_s,
    }
    if args.only != "batch":
        report["service"] = service = bench_service(args.runs, args.seconds)
        for variant in VARIANTS:
            for c in (4, 16):
                s = service[f"{variant}_c{c}"]
                print(
                    f"service {variant:>6}, {c:>2} clients: p50 {s['p50_ms']:.1f} ms, "
                    f"p99 {s['p99_ms']:.1f} ms, {s['rps']:.0f} req/s, {s['errors']:.0f} errors; "
                    f"server CPU {s['server_cpu_ms_per_req']:.1f} ms/request"
                )
            print(f"service {variant:>6}: peak RSS {service[f'{variant}_rss_mb']:.0f} MB")
    if args.only != "service":
        report["batch"] = batch = bench_batch(args.runs, args.rows)
        for n, b in batch.items():
            print(
                f"batch {int(n):>9,} rows: {b['wall_s']:.2f} s wall ({b['wall_min_s']:.2f}-"
                f"{b['wall_max_s']:.2f}) = {b['rows_per_s']:,.0f} rows/s; "
                f"{b['rows_per_s_after_startup']:,.0f} rows/s after the {b['startup_s']:.2f} s "
                f"start-up; {b['rows_per_cpu_s']:,.0f} rows per CPU-second"
            )
        first = next(iter(batch.values()))
        print(
            "one process, rows/s of each step: "
            + ", ".join(
                f"{key} {first[f'{key}_rows_per_s']:,.0f}"
                for key in ("validate", "features", "classifier", "regressor")
            )
        )
    out = ROOT / "bench" / "results" / "serve.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"(medians of {args.runs} runs; 1-min load average before: {load_before:.1f}; "
        f"10M-addition Python loop: {loop_s:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
