"""deploy/docker-compose.yml brought up for real with podman-compose: the API (`serve`), the
Pushgateway and Prometheus (container-smoke.sh's Debian stand-ins for the prom/* images, no
registry here; Grafana cannot be had). Prometheus scrapes the API, loads the rules, and
receives a pipeline run's push: the compose `pipeline` service (the `pipeline` image) runs
`dvc repro collect` on the bundled sample and pushes through the Pushgateway, which is not
published on the host.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.deploy import containers as c
from tests.support import ROOT

pytestmark = pytest.mark.container

PROM = "http://127.0.0.1:9090"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"


def compose(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    exe = c.CACHE / "pc-venv" / "bin" / "podman-compose"
    overlay = c.CACHE / "compose.standins.yml"
    env = dict(c.podman_env(), GRAFANA_ADMIN_PASSWORD="unused", GIT_SHA="test")
    return subprocess.run(
        [str(exe), "-f", str(COMPOSE), "-f", str(overlay), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def prom(path: str, **query: str) -> Any:
    status, body = c.get(f"{PROM}{path}?{urllib.parse.urlencode(query)}")
    assert status == 200, body
    return json.loads(body)["data"]


def eventually(fn: Any, seconds: float) -> Any:
    """fn() once it is truthy (Prometheus scrapes every 30 s), else its last value."""
    t0 = time.monotonic()
    while True:
        value = fn()
        if value or time.monotonic() - t0 > seconds:
            return value
        time.sleep(1)


@pytest.fixture(scope="module")
def stack(images: dict[str, float]) -> Iterator[None]:
    for exe in ("pc-venv/bin/podman-compose", "compose.standins.yml"):
        assert (c.CACHE / exe).exists(), f"container-smoke.sh --compose did not leave {exe}"
    # the images compose names, as built by test_image.py's fixture (no build by compose)
    c.podman("tag", c.SERVE, "movie-success:local")
    c.podman("tag", c.PIPELINE, "movie-success-pipeline:local")
    compose("down", "-v")
    up = compose("up", "-d", "api", "pushgateway", "prometheus")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert c.wait_for("http://127.0.0.1:8000/readyz", 60) is not None
        yield
    finally:
        compose("down", "-v")


def test_ports_bind_to_loopback_and_the_pushgateway_is_internal(stack: None) -> None:
    ps = c.podman("ps", "--format", "{{.Names}} {{.Ports}}").stdout
    lines = {line.split()[0]: line for line in ps.splitlines() if line.startswith("movie-success_")}
    assert "127.0.0.1:8000->8000/tcp" in lines["movie-success_api_1"]
    assert "127.0.0.1:9090->9090/tcp" in lines["movie-success_prometheus_1"]
    assert "->" not in lines["movie-success_pushgateway_1"]
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", 9091)) != 0  # nothing listens for the Pushgateway


def test_prometheus_scrapes_the_api_and_loads_the_rules(stack: None) -> None:
    def health() -> dict[str, str]:
        targets = prom("/api/v1/targets")["activeTargets"]
        out = {t["labels"]["job"]: t["health"] for t in targets}
        return out if set(out.values()) == {"up"} else {}

    assert eventually(health, 75) == {"prometheus": "up", "movie-success-api": "up",
                                      "pushgateway": "up"}  # fmt: skip
    scraped = prom("/api/v1/query", query='up{job="movie-success-api"}')["result"]
    assert scraped[0]["value"][1] == "1"
    rules = yaml.safe_load((ROOT / "deploy" / "monitoring" / "alerts.yml").read_text())
    want = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    loaded = {r["name"] for g in prom("/api/v1/rules")["groups"] for r in g["rules"]}
    assert loaded == want


def test_a_pipeline_run_reaches_prometheus_through_the_pushgateway(stack: None) -> None:
    script = "cp -r /app/. /work && cd /work && dvc config --local core.no_scm true"
    script += " && dvc repro collect"
    run = compose("--profile", "pipeline", "run", "--rm", "pipeline", "/bin/sh", "-c", script)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]

    def pushed() -> list[dict[str, Any]]:
        q = 'pipeline_stage_success{job="movie_success_pipeline",stage="collect"}'
        return prom("/api/v1/query", query=q)["result"]

    result = eventually(pushed, 75)
    assert result, "Prometheus has no pipeline_stage_success for the collect stage"
    assert result[0]["value"][1] == "1"
