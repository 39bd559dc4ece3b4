"""Benchmark of the service under hostile load: /healthz latency while clients send maximal
bad bodies.

Starts `python -m stages.serve` on 127.0.0.1; 4 client processes send MAX_BODY_BYTES
(default 2 MB) lists of movies with 150 unknown keys each (every one refused: 422, over
100,000 problems a body) back to back, while this process samples GET /healthz every
10 ms. Reports /healthz p50/p99/max (the Kubernetes liveness probe gives up after 2 s) and
how long a bad body takes to be refused. Medians over --runs runs.

    python -m bench hostile [--runs 3] [--seconds 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import statistics
import time
from typing import Any

from bench.serve import MOVIE, free_port, start_server

ATTACKERS = 4
MAX_BODY_BYTES = 2_000_000  # the service's default


def bad_body() -> bytes:
    """A JSON list of movies with unknown keys, just under MAX_BODY_BYTES."""
    movie = dict(MOVIE, **{f"x{i}": i for i in range(150)})
    body = json.dumps([movie] * 1000).encode()[:MAX_BODY_BYTES]
    return body[: body.rindex(b"}") + 1] + b"]"


def attacker(port: int, stop: float, out: Any) -> None:
    body = bad_body()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    seconds: list[float] = []
    statuses: set[int] = set()
    while time.time() < stop:
        t0 = time.perf_counter()
        conn.request("POST", "/predict", body, {"content-type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        seconds.append(time.perf_counter() - t0)
        statuses.add(resp.status)
    out.put((seconds, statuses))


def one_run(seconds: float) -> dict[str, float]:
    port = free_port()
    server = start_server(port)
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    stop = time.time() + seconds + 0.5
    procs = [ctx.Process(target=attacker, args=(port, stop, out)) for _ in range(ATTACKERS)]
    try:
        for p in procs:
            p.start()
        time.sleep(0.5)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        samples = []
        while time.time() < stop - 0.2:
            t0 = time.perf_counter()
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200, resp.status
            samples.append(time.perf_counter() - t0)
            time.sleep(0.01)
        results = [out.get() for _ in procs]
        for p in procs:
            p.join()
    finally:
        server.terminate()
        server.wait(timeout=30)
    statuses = set().union(*(s for _, s in results))
    assert statuses == {422}, statuses
    samples.sort()
    refusals = sorted(x for xs, _ in results for x in xs)
    return {
        "healthz_p50_ms": 1000 * samples[len(samples) // 2],
        "healthz_p99_ms": 1000 * samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        "healthz_max_ms": 1000 * samples[-1],
        "bad_bodies": len(refusals),
        "refusal_median_s": statistics.median(refusals),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    runs = [one_run(args.seconds) for _ in range(args.runs)]
    med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(
        f"/healthz under {ATTACKERS} clients sending {len(bad_body()):,}-byte bad bodies: "
        f"p50 {med['healthz_p50_ms']:.1f} ms, p99 {med['healthz_p99_ms']:.1f} ms, "
        f"max {med['healthz_max_ms']:.1f} ms; a bad body refused (422) in "
        f"{med['refusal_median_s']:.2f} s under that load (medians of {args.runs} runs)"
    )
    return 0
