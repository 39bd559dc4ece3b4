"""The real `collect` stage (a subprocess) against the local fake TMDB server."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stages.core.schema import FIELDS
from tests.conftest import ROOT, tool_env
from tests.sources.tmdb.test_mapping import HEAT
from tests.tmdb_server import FakeTmdb, Film, make_catalog

SECRET = "tmdb-secret-7c1e04b9d2"
GTE, LTE = "2000-01-01", "2000-12-31"


def write_params(tmp: Path, **collect: Any) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["collect"].update(
        source="tmdb",
        release_date_gte=GTE,
        release_date_lte=LTE,
        rate_limit=200,
        concurrency=8,
        max_retries=5,
        timeout_s=2.0,
    )
    params["collect"].update(collect)
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def collect_cmd(tmp: Path, params: Path) -> list[str]:
    return [
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


def env_for(server_url: str, **extra: str) -> dict[str, str]:
    env = tool_env({"TMDB_API_BASE_URL": server_url, "TMDB_API_TOKEN": SECRET})
    env.pop("TMDB_API_KEY", None)
    env.update(extra)
    return {k: v for k, v in env.items() if v}


def run(tmp: Path, tmdb: FakeTmdb | None, env: dict[str, str] | None = None, **collect: Any):
    params = write_params(tmp, **collect)
    proc = subprocess.run(
        collect_cmd(tmp, params),
        cwd=ROOT,
        env=env or env_for(tmdb.url if tmdb else "http://127.0.0.1:9/3"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    (tmp / "logs").mkdir(exist_ok=True)
    n = len(list((tmp / "logs").iterdir()))
    (tmp / "logs" / f"{n}.out").write_text(proc.stdout)
    (tmp / "logs" / f"{n}.err").write_text(proc.stderr)
    return proc


def output(tmp: Path) -> list[dict[str, Any]]:
    lines = (tmp / "out" / "movies.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines]


def summary(tmp: Path) -> dict[str, Any]:
    return json.loads((tmp / "out" / "summary.json").read_text())


def last_run(tmp: Path) -> dict[str, Any]:
    """This run's traffic: the summary's `run` entry, kept in the cache directory."""
    run: dict[str, Any] = json.loads((tmp / "cache" / "last_run.json").read_text())["run"]
    return run


def expected_ids(tmdb: FakeTmdb, gte: str = GTE, lte: str = LTE) -> list[int]:
    return sorted(f.id for f in tmdb.in_range(gte, lte) if f.id not in tmdb.missing)


def films(n: int = 400) -> list[Film]:
    return make_catalog(n, "1999-07-01", "2001-06-30", seed=3)


@pytest.fixture
def tmdb() -> Iterator[FakeTmdb]:
    with FakeTmdb(films(), SECRET) as server:
        yield server


def test_every_movie_in_range_exactly_once_despite_faults(tmp_path: Path, tmdb: FakeTmdb) -> None:
    in_range = expected_ids(tmdb)
    tmdb.missing.update(in_range[3:5])
    bad = in_range[10]
    tmdb.faults.always_malformed.add(bad)
    f = tmdb.faults
    f.kinds = ("details", "discover", "changes")
    f.burst_429 = 2
    f.p_429, f.p_500, f.p_malformed, f.p_truncated, f.p_slow = 0.02, 0.03, 0.02, 0.02, 0.01
    f.slow_s, f.retry_after = 1.0, "0.2"
    proc = run(tmp_path, tmdb, timeout_s=0.5)
    assert proc.returncode == 0, proc.stderr
    recs = output(tmp_path)
    ids = [r["id"] for r in recs]
    assert ids == sorted(set(ids))  # sorted, each once
    assert ids == [i for i in expected_ids(tmdb) if i != bad]
    assert all(GTE <= r["release_date"] <= LTE for r in recs)
    assert all(set(r) == set(FIELDS) and r["data_source"] == "tmdb" for r in recs)
    assert all(r["budget"] != 0 and r["revenue"] != 0 for r in recs)
    assert any(r["budget"] is None for r in recs)
    assert all(r["director"] and r["cast"] for r in recs)
    s = summary(tmp_path)
    assert s["movies"] == len(ids)
    assert (s["listed"], s["unavailable"]) == (len(ids) + 3, 3)
    assert "run" not in s
    r = last_run(tmp_path)
    assert r["skipped"] == {"malformed": 1, "not_found": 2}
    assert r["retries"] > 0
    assert r["requests"] == len(tmdb.requests())
    assert r["status_429"] == tmdb.sent_429 > 0
    last = proc.stderr.strip().splitlines()[-1]
    assert f"{len(ids)} movies written" in last
    assert f"{r['requests']} requests" in last


def test_rate_limit_holds_in_every_one_second_window(tmp_path: Path) -> None:
    with FakeTmdb(films(240), SECRET) as tmdb:
        proc = run(tmp_path, tmdb, rate_limit=20)
        assert proc.returncode == 0, proc.stderr
        n = len(tmdb.requests())
        assert n > 100
        assert tmdb.max_in_window() <= 20
        times = sorted(t for t, _, _ in tmdb.requests())
        assert n / (times[-1] - times[0]) > 20 * 0.85  # and not needlessly slow


def test_401_stops_at_once_with_a_clear_message(tmp_path: Path, tmdb: FakeTmdb) -> None:
    tmdb.faults.unauthorized = True
    proc = run(tmp_path, tmdb)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: TMDB rejected the credentials (HTTP 401); set a valid TMDB_API_TOKEN "
        "(v4 read access token) or TMDB_API_KEY (v3 key)"
    ]
    assert len(tmdb.requests()) == 1
    assert not (tmp_path / "out").exists()


def test_missing_credentials_is_a_user_error(tmp_path: Path, tmdb: FakeTmdb) -> None:
    proc = run(tmp_path, tmdb, env=env_for(tmdb.url, TMDB_API_TOKEN=""))
    assert proc.returncode == 2
    assert "TMDB_API_TOKEN" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert tmdb.requests() == []


def cached_ids(tmp: Path) -> set[int]:
    db = sqlite3.connect(tmp / "cache" / "tmdb.sqlite")
    try:
        return {r[0] for r in db.execute("SELECT id FROM movies")}
    finally:
        db.close()


def test_sigkill_mid_run_then_resume_loses_nothing(tmp_path: Path, tmdb: FakeTmdb) -> None:
    params = write_params(tmp_path, rate_limit=40)
    proc = subprocess.Popen(
        collect_cmd(tmp_path, params),
        cwd=ROOT,
        env=env_for(tmdb.url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while len(tmdb.requests("details")) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = cached_ids(tmp_path)
    assert 40 <= len(before) < len(expected_ids(tmdb))  # killed mid-way, films already kept
    assert not (tmp_path / "out" / "movies.jsonl").exists()
    seen = len(tmdb.requests("details"))

    proc2 = run(tmp_path, tmdb, rate_limit=200)
    assert proc2.returncode == 0, proc2.stderr
    assert [r["id"] for r in output(tmp_path)] == expected_ids(tmdb)
    refetched = {int(p.rsplit("/", 1)[1]) for _, p, _ in tmdb.requests("details")[seen:]}
    assert refetched.isdisjoint(before)  # nothing fetched twice
    assert sorted(refetched | before) == expected_ids(tmdb)


def test_unchanged_rerun_makes_no_detail_request_and_changes_refetch_only_those(
    tmp_path: Path, tmdb: FakeTmdb
) -> None:
    assert run(tmp_path, tmdb).returncode == 0
    first = (tmp_path / "out" / "movies.jsonl").read_bytes()
    first_summary = (tmp_path / "out" / "summary.json").read_bytes()

    n = len(tmdb.requests("details"))
    assert run(tmp_path, tmdb).returncode == 0
    assert len(tmdb.requests("details")) == n
    assert (tmp_path / "out" / "movies.jsonl").read_bytes() == first
    assert (tmp_path / "out" / "summary.json").read_bytes() == first_summary  # dvc.lock stays
    assert last_run(tmp_path)["requests_by_kind"]["details"] == 0

    ids = expected_ids(tmdb)
    changed = [ids[1], ids[50], ids[-1], tmdb.films[0].id]  # the last one is out of range
    tmdb.change(changed)
    assert run(tmp_path, tmdb).returncode == 0
    assert sorted(tmdb.detail_ids()[n:]) == sorted(changed[:3])
    recs = {r["id"]: r for r in output(tmp_path)}
    assert sorted(i for i, r in recs.items() if r["title"].endswith("(v1)")) == sorted(changed[:3])
    assert sorted(recs) == ids

    # The same feed again, the same day: the feed has no times, so films changed today may
    # have changed again after their refetch; they are fetched again, nothing else is.
    assert run(tmp_path, tmdb).returncode == 0
    assert sorted(tmdb.detail_ids()[n + 3 :]) == sorted(changed[:3])


def test_a_film_changed_again_the_day_it_was_fetched_is_refetched(
    tmp_path: Path, tmdb: FakeTmdb
) -> None:
    ids = expected_ids(tmdb)
    film = ids[7]
    tmdb.change([film])  # changed this morning, before the first fetch
    assert run(tmp_path, tmdb).returncode == 0
    assert {r["id"]: r for r in output(tmp_path)}[film]["title"].endswith("(v1)")
    n = len(tmdb.detail_ids())
    tmdb.change([film])  # and again a few hours later (a revenue corrected): same day
    assert run(tmp_path, tmdb).returncode == 0
    assert tmdb.detail_ids()[n:] == [film]
    assert {r["id"]: r for r in output(tmp_path)}[film]["title"].endswith("(v2)")


def test_wider_range_fetches_only_the_new_part(tmp_path: Path, tmdb: FakeTmdb) -> None:
    assert run(tmp_path, tmdb, release_date_lte="2000-06-30").returncode == 0
    part = expected_ids(tmdb, GTE, "2000-06-30")
    assert [r["id"] for r in output(tmp_path)] == part
    n = len(tmdb.requests("details"))
    assert run(tmp_path, tmdb, release_date_gte="1999-10-01").returncode == 0
    wide = expected_ids(tmdb, "1999-10-01", LTE)
    assert [r["id"] for r in output(tmp_path)] == wide
    assert sorted(tmdb.detail_ids()[n:]) == sorted(set(wide) - set(part))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_secret_never_appears_in_outputs_logs_or_cache(tmp_path: Path, tmdb: FakeTmdb) -> None:
    f = tmdb.faults
    f.p_500, f.p_truncated, f.p_slow, f.slow_s = 0.05, 0.05, 0.02, 1.0
    key_env = env_for(tmdb.url, TMDB_API_TOKEN="", TMDB_API_KEY=SECRET)
    proc = run(tmp_path, tmdb, env=key_env, timeout_s=0.5)  # api_key travels in the URL
    assert proc.returncode == 0, proc.stderr
    assert all(p.get("api_key") == SECRET for _, _, p in tmdb.requests())
    assert run(tmp_path, tmdb).returncode == 0  # bearer token
    dead = env_for(f"http://127.0.0.1:{closed_port()}/3", TMDB_API_TOKEN="", TMDB_API_KEY=SECRET)
    proc = run(tmp_path, None, env=dead, max_retries=1)
    assert proc.returncode == 2
    assert "connection" in proc.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "params.yaml"]
    assert any(p.suffix == ".err" for p in files)
    assert any(p.name.startswith("tmdb.sqlite") for p in files)
    for p in files:
        assert SECRET.encode() not in p.read_bytes(), p


def test_a_tmdb_run_pushes_its_row_count(tmp_path: Path, tmdb: FakeTmdb) -> None:
    pushes: list[tuple[str, str]] = []

    class Gateway(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            pushes.append((self.path, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        proc = run(tmp_path, tmdb, env=env_for(tmdb.url, PUSHGATEWAY_URL=url))
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, proc.stderr
    ((path, body),) = pushes
    assert path == "/metrics/job/movie_success_pipeline/stage/collect"
    rows = [x for x in body.splitlines() if x.startswith("pipeline_stage_rows ")]
    assert rows == [f"pipeline_stage_rows {float(len(expected_ids(tmdb)))}"]


def test_bad_film_objects_become_documented_defaults_or_counted_drops(tmp_path: Path) -> None:
    """No credits, an empty collection, fields missing or mistyped: defaults, never a crash;
    an object without a usable id: one counted `malformed` skip."""
    base = {k: v for k, v in HEAT.items() if k not in ("credits", "keywords", "release_dates")}
    objects: dict[int, dict[str, Any]] = {
        1: dict(base, id=1, release_date="2000-02-01"),  # no credits, keywords, release_dates
        2: dict(base, id=2, release_date="2000-03-01", belongs_to_collection={}),
        3: {"id": 3, "release_date": "2000-04-01"},  # nearly every field missing
        4: dict(base, id=4, release_date="2000-05-01", credits={"cast": None, "crew": {}},
                genres=None, budget="1e6", vote_count="12", keywords={"keywords": "x"}),
        5: dict(base, id="five", release_date="2000-06-01"),  # no usable id
        6: dict(HEAT, id=6, release_date="2000-07-01"),  # a complete film
    }  # fmt: skip
    films = [Film(i, str(o["release_date"]), False, "en", ("US",)) for i, o in objects.items()]
    with FakeTmdb(films, SECRET, objects=objects) as server:
        proc = run(tmp_path, server)
    assert proc.returncode == 0, proc.stderr
    recs = {r["id"]: r for r in output(tmp_path)}
    assert sorted(recs) == [1, 2, 3, 4, 6]
    assert all(set(r) == set(FIELDS) for r in recs.values())
    assert recs[1]["director"] is None
    assert recs[1]["cast"] == []
    assert recs[1]["keywords"] == []
    assert recs[1]["certification"] is None
    assert recs[1]["budget"] == HEAT["budget"]
    assert recs[2]["collection"] is None
    assert recs[3]["title"] == ""
    assert recs[3]["genres"] == []
    assert recs[3]["budget"] is None
    assert (recs[4]["budget"], recs[4]["vote_count"], recs[4]["genres"]) == (None, None, [])
    assert recs[4]["cast"] == []
    assert recs[4]["director"] is None
    assert recs[6]["director"] == "Michael Mann"
    assert len(recs[6]["cast"]) == 6
    assert last_run(tmp_path)["skipped"] == {"malformed": 1}
    assert summary(tmp_path)["unavailable"] == 1
