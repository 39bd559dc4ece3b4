"""Pipeline metrics reach a real HTTP server speaking the Pushgateway's push API."""

from __future__ import annotations

import http.server
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stages.core import pushgateway
from tests.conftest import ROOT, sh, tool_env


@dataclass
class Recorder:
    url: str
    status: int = 200
    pushes: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, body

    def samples(self, index: int = -1) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        body = self.pushes[index][2]
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(body)
            for s in fam.samples
        }


@pytest.fixture
def gateway() -> Iterator[Recorder]:
    rec = Recorder(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            rec.pushes.append((self.command, self.path, body))
            self.send_response(rec.status)
            self.end_headers()

        do_POST = do_PUT = _handle

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield rec
    server.shutdown()
    server.server_close()


def test_no_url_is_a_no_op(gateway: Recorder) -> None:
    assert pushgateway.push_run("train", 1.0, True, env={}) is False
    assert gateway.pushes == []


def test_success_pushes_duration_rows_and_metrics(gateway: Recorder) -> None:
    pushgateway.record(rows=741, metrics={"roc_auc": 0.61, "rows": 741, "name": "x"})
    assert pushgateway.push_run("evaluate", 2.5, True, env={"PUSHGATEWAY_URL": gateway.url})
    method, path, _ = gateway.pushes[0]
    assert (method, path) == ("POST", "/metrics/job/movie_success_pipeline/stage/evaluate")
    s = gateway.samples()
    assert s[("pipeline_stage_duration_seconds", ())] == 2.5
    assert s[("pipeline_stage_success", ())] == 1.0
    assert s[("pipeline_stage_failures", ())] == 0.0
    assert s[("pipeline_stage_rows", ())] == 741
    assert s[("pipeline_model_metric", (("metric", "roc_auc"),))] == 0.61
    assert ("pipeline_model_metric", (("metric", "name"),)) not in s  # not a number
    assert ("pipeline_stage_last_success_timestamp_seconds", ()) in s
    assert ("pipeline_stage_last_failure_timestamp_seconds", ()) not in s


def test_failure_pushes_failure_but_keeps_last_success(gateway: Recorder) -> None:
    pushgateway.push_run("train", 0.1, False, env={"PUSHGATEWAY_URL": gateway.url})
    s = gateway.samples()
    assert s[("pipeline_stage_success", ())] == 0.0
    assert s[("pipeline_stage_failures", ())] == 1.0
    assert ("pipeline_stage_last_failure_timestamp_seconds", ()) in s
    # POST replaces only the pushed names: the previous success time stays in the gateway
    assert ("pipeline_stage_last_success_timestamp_seconds", ()) not in s
    assert gateway.pushes[0][0] == "POST"


def test_gateway_errors_only_warn(gateway: Recorder, caplog: pytest.LogCaptureFixture) -> None:
    gateway.status = 500
    with caplog.at_level(logging.WARNING):
        ok = pushgateway.push_run("train", 1.0, True, env={"PUSHGATEWAY_URL": gateway.url})
    assert ok is False
    assert "push of stage train to 127.0.0.1 failed" in caplog.text


def test_unreachable_gateway_only_warns(caplog: pytest.LogCaptureFixture) -> None:
    url = "http://user:secret@127.0.0.1:9"  # discard port: connection refused
    with caplog.at_level(logging.WARNING):
        assert pushgateway.push_run("train", 1.0, True, env={"PUSHGATEWAY_URL": url}) is False
    assert "failed" in caplog.text
    assert "secret" not in caplog.text


def test_a_real_command_pushes_its_outcome(gateway: Recorder, tmp_path: Path) -> None:
    """`python -m stages.predict` (run through cli.run) pushes under its own name."""
    movies = tmp_path / "m.jsonl"
    movies.write_text('{"title": "A", "release_date": "2010-01-01", "budget": -1}\n')
    env = tool_env({"PUSHGATEWAY_URL": gateway.url, "MODEL_PATH": str(tmp_path / "none")})
    proc = sh(
        "python",
        "-m",
        "stages.predict",
        "--input",
        movies,
        "--output",
        tmp_path / "o.csv",
        cwd=ROOT,
        check=False,
        env=env,
    )
    assert proc.returncode == 2
    assert gateway.pushes[-1][1] == "/metrics/job/movie_success_pipeline/stage/predict"
    assert gateway.samples()[("pipeline_stage_failures", ())] == 1.0
