"""`dvc repro --pull` vs `dvc pull` on a fresh clone, and the PR report, against moto S3.

Target: repro --pull within 2x of a plain pull of the same outputs (unchanged stages come from
the run-cache, nothing is re-run); the report under 10 s after the repro. Medians of RUNS.
"""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench._util import RUNS, project_copy
from bench._util import sh as _sh
from bench._util import timed as _timed
from tests.support import aws_env, make_bucket, use_s3_remote

BUCKET = "bench"


def sh(*cmd: str | Path, cwd: Path) -> float:
    """bench._util.sh with the fake AWS credentials every command here needs for moto."""
    return _sh(*cmd, cwd=cwd, env=aws_env())


def timed(*cmd: str | Path, cwd: Path) -> tuple[float, float]:
    """bench._util.timed with the fake AWS credentials."""
    return _timed(*cmd, cwd=cwd, env=aws_env())


def yaml_parser() -> str:
    """The YAML parser DVC gets here: it re-reads dvc.yaml, dvc.lock, params.yaml per stage."""
    from ruamel.yaml.main import CParser

    if CParser is not None:
        return "C (ruamel.yaml.clib)"
    return "pure Python (ruamel.yaml.clib missing: `make install`), repro --pull is slower"


def clone(src: Path, dest: Path, endpoint: str) -> Path:
    """A fresh git clone of `src` using the bench bucket: nothing cached, as on a CI runner."""
    sh("git", "clone", "-q", src, dest, cwd=dest.parent)
    use_s3_remote(dest, endpoint, BUCKET)
    return dest


def main(argv: list[str] | None = None) -> int:
    """Start moto, push the reproduced project once, then time pull, repro --pull and report."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    make_bucket(endpoint, BUCKET)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        src = project_copy(tmp_path / "src")
        repro_s = sh("dvc", "repro", cwd=src)  # the committed dvc.lock already matches
        shutil.copytree(src / ".dvc" / "cache", tmp_path / "cache")
        pusher = clone(src, tmp_path / "pusher", endpoint)
        shutil.copytree(tmp_path / "cache", pusher / ".dvc" / "cache")
        sh("dvc", "push", "--run-cache", cwd=pusher)

        pulls, repros, reports = [], [], []
        pull_cpu, repro_cpu = [], []
        for i in range(RUNS):
            a = clone(src, tmp_path / f"pull{i}", endpoint)
            wall, cpu = timed("dvc", "pull", cwd=a)
            pulls.append(wall)
            pull_cpu.append(cpu)
            b = clone(src, tmp_path / f"repro{i}", endpoint)
            wall, cpu = timed("dvc", "repro", "--pull", cwd=b)
            repros.append(wall)
            repro_cpu.append(cpu)
            reports.append(
                sh(
                    sys.executable,
                    "-m",
                    "stages.report",
                    "--base",
                    "main",
                    "--out",
                    tmp_path / f"report{i}",
                    cwd=b,
                )
            )
    server.stop()

    pull_m, repro_m, report_m = (statistics.median(x) for x in (pulls, repros, reports))
    print(f"bench.remote: medians of {RUNS} runs on a fresh clone against moto S3 (loopback)")
    print(f"  first dvc repro:   {repro_s:6.2f} s (reference)")
    print(f"  dvc pull:          {pull_m:6.2f} s  {sorted(round(x, 2) for x in pulls)}")
    print(f"  dvc repro --pull:  {repro_m:6.2f} s  {sorted(round(x, 2) for x in repros)}")
    print(f"  ratio:             {repro_m / pull_m:6.2f}   (repro --pull / pull, target <= 2.0)")
    print(f"  report:            {report_m:6.2f} s  (after the repro, target < 10 s)")
    pull_c, repro_c = statistics.median(pull_cpu), statistics.median(repro_cpu)
    cpu_line = f"pull {pull_c:.2f} s, repro --pull {repro_c:.2f} s, ratio {repro_c / pull_c:.2f}"
    print(f"  CPU (medians):     {cpu_line}")
    print(f"  yaml parser:       {yaml_parser()}")
    load = f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after ({os.cpu_count()} CPUs)"
    print(f"  load average:      {load}")
    return 0
