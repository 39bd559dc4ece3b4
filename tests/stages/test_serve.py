"""`python -m stages.serve` as a real process: it serves on loopback, or refuses to start."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import ROOT, sh, tool_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(port: int, method: str, path: str, body: object = None) -> tuple[int, object]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    data = None if body is None else json.dumps(body)
    conn.request(method, path, data, {"content-type": "application/json"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read() or b"null")


def test_serves_predictions_on_loopback(model_path: Path, tmp_path: Path) -> None:
    port = free_port()
    env = tool_env({"MODEL_PATH": str(model_path), "GIT_SHA": "feed", "PORT": str(port)})
    proc = subprocess.Popen(
        ["python", "-m", "stages.serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if request(port, "GET", "/readyz")[0] == 200:
                    break
            except OSError:
                assert time.monotonic() < deadline, "not ready within 60 s"
                time.sleep(0.2)
        movie = {"title": "T", "release_date": "2009-01-01", "budget": 5_000_000}
        status, body = request(port, "POST", "/predict", movie)
        assert status == 200
        assert isinstance(body, dict)
        assert 0.0 <= body["success_probability"] <= 1.0
        assert request(port, "POST", "/predict", dict(movie, budget=-1))[0] == 422
        status, version = request(port, "GET", "/version")
        assert isinstance(version, dict)
        assert version["git_sha"] == "feed"
        assert version["model_md5"] == "unknown"  # MODEL_PATH outside dvc.lock's train output
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_port_in_use_stops_start_up_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "m.skops").write_bytes(b"not read: the port is checked first")
    env = tool_env({"MODEL_PATH": str(tmp_path / "m.skops")})
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = sh(
            "python", "-m", "stages.serve", "--port", str(port), cwd=ROOT, env=env, check=False
        )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: environment: cannot listen on 127.0.0.1:{port} (Address already in use); "
        "set another PORT or HOST, or stop what uses it"
    ]


def test_missing_model_stops_start_up_with_one_line(tmp_path: Path) -> None:
    env = tool_env({"MODEL_PATH": str(tmp_path / "none.skops")})
    proc = sh("python", "-m", "stages.serve", cwd=ROOT, env=env, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'none.skops'}: model not found; run 'make repro' "
        "(or 'dvc pull') or set MODEL_PATH"
    ]
