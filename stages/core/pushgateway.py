"""Pipeline metrics to a Prometheus Pushgateway when PUSHGATEWAY_URL is set; never fails a run.

cli.run() pushes each command's outcome (duration, success, failure time); a stage adds its
figures with one record(...) call at the end of main(). Pushes use POST (replace only the
metrics pushed), so the last success time survives a later failure.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway

log = logging.getLogger(__name__)

JOB = "movie_success_pipeline"
TIMEOUT_S = 3.0
_figures: dict[str, Any] = {}  # one process runs one command: what its main() recorded


def record(*, rows: int | None = None, metrics: Mapping[str, Any] | None = None) -> None:
    """Remember the stage's rows and evaluation metrics for the push at the end of the run."""
    if rows is not None:
        _figures["rows"] = rows
    if metrics is not None:
        _figures["metrics"] = dict(metrics)


def build_registry(
    duration_s: float, ok: bool, now: float, figures: Mapping[str, Any]
) -> CollectorRegistry:
    """The metrics of one run: outcome and times always, rows and metrics on success."""
    reg = CollectorRegistry()

    def gauge(name: str, doc: str, value: float) -> None:
        Gauge(name, doc, registry=reg).set(value)

    gauge("pipeline_stage_duration_seconds", "Wall time of the last run.", duration_s)
    gauge("pipeline_stage_success", "1 if the last run succeeded, else 0.", float(ok))
    gauge("pipeline_stage_failures", "1 if the last run failed, else 0.", float(not ok))
    gauge("pipeline_stage_last_run_timestamp_seconds", "End of the last run (unix).", now)
    if not ok:
        gauge("pipeline_stage_last_failure_timestamp_seconds", "End of the last failure.", now)
        return reg
    gauge("pipeline_stage_last_success_timestamp_seconds", "End of the last success.", now)
    if "rows" in figures:
        gauge("pipeline_stage_rows", "Rows the last successful run produced.", figures["rows"])
    numeric = {
        k: float(v)
        for k, v in figures.get("metrics", {}).items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }
    if numeric:
        g = Gauge("pipeline_model_metric", "Evaluation metrics.", ["metric"], registry=reg)
        for name, value in sorted(numeric.items()):
            g.labels(name).set(value)
    return reg


def push_run(stage: str, duration_s: float, ok: bool, env: Mapping[str, str] | None = None) -> bool:
    """Push this run's metrics if PUSHGATEWAY_URL is set; True if pushed. Never raises."""
    url = (os.environ if env is None else env).get("PUSHGATEWAY_URL", "")
    if not url:
        return False
    try:
        reg = build_registry(duration_s, ok, time.time(), _figures)
        pushadd_to_gateway(url, JOB, reg, grouping_key={"stage": stage}, timeout=TIMEOUT_S)
    except (OSError, ValueError) as exc:  # unreachable, refused, HTTP error, bad URL
        host = urlsplit(url if "//" in url else f"//{url}").hostname  # never log credentials
        log.warning("pushgateway: push of stage %s to %s failed: %s", stage, host, exc)
        return False
    finally:
        _figures.clear()
    return True
