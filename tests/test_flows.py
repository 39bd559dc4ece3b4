"""The delivery flows as they would run: each workflow job's `run:` steps, parsed from the YAML
and run in order with the env GitHub would give (tests/flow_runner.py), in a fresh clone of a
bare local git "origin", against the moto S3 server, with `cml` and `gh` stand-ins on PATH;
the retrain collects real TMDB films from the TMDB double (tests/tmdb_server.py) and skips
where ../shared/data/tmdb-dev.jsonl.gz is absent (fails under REQUIRE_TOOLS=1).

Skipped, because they are actions (`uses:`) the runner cannot run here: actions/checkout (the
test clones origin itself), actions/setup-python and the `pip install` steps (the test's venv
has the lock installed), aws-actions/configure-aws-credentials (the moto credentials are in the
runner env), actions/cache (the retrain test copies the previous run's TMDB cache into the
clone, as the restore step would), actions/upload-artifact (no artifact URL: the comment names the
artifact instead), iterative/setup-cml (the stand-in is on PATH),
actions/create-github-app-token, and everything docker (the flow stops before the two builds).
Each test prints the steps it ran, the ones it skipped and its wall time.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.flow_runner import JobRun, run_job, runner_env, stub_calls, stub_env
from tests.require import tmdb_dev
from tests.support import ROOT, aws_env, copy_project, make_bucket, sh, tool_env
from tests.tmdb_server import FakeTmdb

pytestmark = pytest.mark.e2e


def report_run(label: str, run: JobRun) -> None:
    print(
        f"\n[{label}] {run.status} in {run.seconds:.1f} s; ran {len(run.ran())} steps: "
        f"{[f'{s.name} ({s.seconds:.1f} s)' for s in run.steps if s.name in run.ran()]}; "
        f"skipped actions: {run.skipped('skipped-uses')}; "
        f"skipped installs: {run.skipped('skipped-install')}; "
        f"skipped by if: {run.skipped('skipped-if')}"
    )


def bare_origin(repo: Path, dest: Path) -> Path:
    sh("git", "clone", "-q", "--bare", str(repo), str(dest), cwd=repo.parent)
    return dest


def clone(origin: Path, dest: Path, branch: str, endpoint: str) -> Path:
    """What actions/checkout (fetch-depth: 0) leaves, plus the test S3 endpoint (local)."""
    sh("git", "clone", "-q", "--branch", branch, f"file://{origin}", str(dest), cwd=origin.parent)
    sh("dvc", "remote", "modify", "--local", "storage", "endpointurl", endpoint, cwd=dest)
    return dest


def flow_env(tmp: Path, endpoint: str) -> dict[str, str]:
    env = runner_env(**{k: v for k, v in aws_env().items() if k.startswith("AWS_")})
    return stub_env(env, tmp / "stubs.jsonl", tmp / "stubs-state.json")


def s3_keys(endpoint: str, bucket: str, prefix: str) -> set[str]:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"] for p in pages for o in p.get("Contents", [])}


def copy_sources(dockerfile: Path) -> list[str]:
    """The build-context sources of the Dockerfile's COPY instructions (not --from=)."""
    sources = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if not words or words[0].upper() != "COPY":
            continue
        if any(w.startswith("--from=") for w in words):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        sources += args[:-1]
    return sources


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def lock_md5(repo: Path, stage: str, path: str) -> str:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return str(next(o["md5"] for o in lock["stages"][stage]["outs"] if o["path"] == path))


# ---------------------------------------------------------------- ci: the image job


@pytest.fixture(scope="module")
def ci_origin(
    reproduced_project: Path, s3_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The project reproduced and committed, its outputs pushed to the S3 remote; the bare
    origin a fresh checkout clones."""
    tmp = tmp_path_factory.mktemp("ci-flow")
    repo = tmp / "dev"
    shutil.copytree(reproduced_project, repo, symlinks=True)
    make_bucket(s3_server, "ci-flow")
    sh("dvc", "remote", "modify", "--local", "storage", "url", "s3://ci-flow/store", cwd=repo)
    sh("dvc", "remote", "modify", "--local", "storage", "endpointurl", s3_server, cwd=repo)
    sh("dvc", "push", "-q", cwd=repo, env=aws_env())
    return bare_origin(repo, tmp / "origin.git")


@pytest.mark.parametrize("fork", [False, True], ids=["with-secrets", "fork-pr"])
def test_ci_image_job_from_a_fresh_clone(
    ci_origin: Path, s3_server: str, tmp_path: Path, fork: bool
) -> None:
    ws = clone(ci_origin, tmp_path / "ws", "main", s3_server)
    assert not (ws / "models" / "model.skops").exists()  # a git-ignored DVC output
    secrets = {} if fork else {"DVC_REMOTE_URL": "s3://ci-flow/store"}
    secrets.update({} if fork else {"AWS_READ_ACCESS_KEY_ID": "testing"})
    run = run_job(
        "ci",
        "docker",
        ws,
        env=flow_env(tmp_path, s3_server),
        secrets=secrets,
        github={"event_name": "pull_request", "sha": "0" * 40},
        stop_before="Build the serve image (pushed on main/develop)",
    )
    report_run(f"ci docker {'fork' if fork else 'secrets'}", run)
    assert run.status == "success", run.log()
    assert "Get the model dvc.lock names (dvc pull train; dvc repro train on forks)" in run.ran()
    assert "Every COPY source of the Dockerfile exists" in run.ran()
    # both targets are built after the checks (the flow stops there: docker is not run here)
    assert [s.name for s in run.steps if s.status == "not-reached"] == [
        "Build the serve image (pushed on main/develop)",
        "Build the pipeline image (pushed on main/develop)",
    ]
    model = ws / "models" / "model.skops"
    assert md5(model) == lock_md5(ws, "train", "models/model.skops")
    for src in copy_sources(ws / "Dockerfile"):
        assert (ws / src).exists(), f"Dockerfile COPY source {src} missing before the build"
    if fork:
        assert "reproduced in this job" in run.summary
    else:
        assert "pulled from the DVC remote" in run.summary


def test_image_inputs_check_fails_naming_a_missing_source(ci_origin: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    sh("git", "clone", "-q", f"file://{ci_origin}", str(ws), cwd=tmp_path)
    proc = sh("bash", "scripts/check-image-inputs.sh", "Dockerfile", cwd=ws, check=False)
    assert proc.returncode == 1
    assert "copies models/model.skops, which does not exist here" in proc.stdout


# ---------------------------------------------------------------- pr-report


MINI_STAGE = """\
import json
from pathlib import Path

import yaml

q = yaml.safe_load(Path("params.yaml").read_text())["train"]["quality"]
Path("models/plots").mkdir(parents=True, exist_ok=True)
Path("data/prepared").mkdir(parents=True, exist_ok=True)
Path("models/metrics.json").write_text(json.dumps({"roc_auc": q, "log_loss": round(1 - q, 6)}))
Path("data/prepared/validation.json").write_text(json.dumps({"passed": True, "rows_out": 90}))
rows = ["fpr,tpr"] + [f"{x / 10},{min(1.0, x / 10 + q - 0.5):.3f}" for x in range(11)]
Path("models/plots/roc.csv").write_text("\\n".join(rows) + "\\n")
Path("models/model_card.md").write_text(f"# Model card\\n\\nquality {q}\\n")
"""

MINI_DVC_YAML = """\
stages:
  evaluate:
    cmd: python mini_stage.py
    deps: [mini_stage.py]
    params: [train]
    outs: [data/prepared/validation.json, models/plots, models/model_card.md]
    metrics: [models/metrics.json]
plots:
  - ROC:
      x: fpr
      y:
        models/plots/roc.csv: tpr
"""


def set_quality(repo: Path, q: float) -> None:
    (repo / "params.yaml").write_text(f"train:\n  quality: {q}\n")


@pytest.fixture
def pr_origin(s3_server: str, tmp_path: Path) -> Path:
    """main (quality 0.7, outputs pushed) and a feature branch one commit ahead (0.8, dvc.lock
    committed, outputs not pushed: the PR job reproduces them)."""
    repo = tmp_path / "dev"
    repo.mkdir()
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    sh("dvc", "init", "-q", cwd=repo)
    sh("dvc", "config", "core.analytics", "false", cwd=repo)
    sh("dvc", "remote", "add", "-d", "storage", "s3://CHANGE-ME-bucket/movie-success", cwd=repo)
    shutil.copytree(ROOT / "scripts", repo / "scripts")
    (repo / "mini_stage.py").write_text(MINI_STAGE)
    (repo / "dvc.yaml").write_text(MINI_DVC_YAML)
    (repo / ".gitignore").write_text("/report/\n")
    set_quality(repo, 0.7)
    sh("dvc", "repro", "-q", cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-q", "-m", "base", cwd=repo)
    bucket = f"pr-flow-{tmp_path.name.lower().replace('_', '-')}"[:60]
    make_bucket(s3_server, bucket)
    sh("dvc", "remote", "modify", "--local", "storage", "url", f"s3://{bucket}/store", cwd=repo)
    sh("dvc", "remote", "modify", "--local", "storage", "endpointurl", s3_server, cwd=repo)
    sh("dvc", "push", "-q", "--run-cache", cwd=repo, env=aws_env())
    sh("git", "checkout", "-q", "-b", "feature", cwd=repo)
    set_quality(repo, 0.8)
    sh("dvc", "repro", "-q", cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-q", "-m", "better model", cwd=repo)
    (tmp_path / "bucket").write_text(bucket)
    return bare_origin(repo, tmp_path / "origin.git")


def pr_github(number: int = 7) -> dict[str, Any]:
    return {
        "event_name": "pull_request",
        "base_ref": "main",
        "head_ref": "feature",
        "event": {
            "pull_request": {
                "number": number,
                "head": {"repo": {"full_name": "owner/movie-success"}},
            }
        },
    }


def test_pr_report_on_a_two_commit_pr(pr_origin: Path, s3_server: str, tmp_path: Path) -> None:
    bucket = (tmp_path / "bucket").read_text()
    ws = clone(pr_origin, tmp_path / "ws", "feature", s3_server)
    store_before = s3_keys(s3_server, bucket, "store/")
    secrets = {"DVC_REMOTE_URL": f"s3://{bucket}/store", "AWS_ACCESS_KEY_ID": "testing"}
    run = run_job(
        "pr-report",
        "report",
        ws,
        env=flow_env(tmp_path, s3_server),
        secrets=secrets,
        github=pr_github(),
    )
    report_run("pr-report", run)
    assert run.status == "success", run.log()
    # The report, as cml was asked to post it: one comment, edited in place, no telemetry.
    calls = [c for c in stub_calls(tmp_path / "stubs.jsonl") if c["tool"] == "cml"]
    assert len(calls) == 1
    call = calls[0]
    assert call["args"][:3] == ["comment", "update", "--target=pr"]
    assert call["args"][-1] == "comment.md"
    assert call["do_not_track"] == "1"
    assert call["exit"] == 0
    assert call["uploads"] == []  # not opted in: nothing for cml to upload
    body = call["body"]
    assert "| `roc_auc` | 0.7 | 0.8 | +0.1 | 🟢 better |" in body
    assert "| `log_loss` | 0.3 | 0.2 | -0.1 | 🟢 better |" in body
    assert "| `train.quality` | 0.7 | 0.8 |" in body
    assert "in the workflow run's `report` artifact" in body
    # The same report in the job summary; the full one (images resolved) in the artifact dir.
    assert "| `roc_auc` | 0.7 | 0.8 | +0.1 | 🟢 better |" in run.summary
    report = (ws / "report" / "report.md").read_text()
    refs = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", report)
    assert refs
    assert all((ws / "report" / r).is_file() for r in refs), refs
    # Outputs went to the PR prefix; the production prefix was only read.
    assert s3_keys(s3_server, bucket, "store-pr/")  # <DVC_REMOTE_URL>-pr
    assert s3_keys(s3_server, bucket, "store/") == store_before


def test_pr_report_with_published_assets_resolves_every_image(
    pr_origin: Path, s3_server: str, tmp_path: Path
) -> None:
    bucket = (tmp_path / "bucket").read_text()
    ws = clone(pr_origin, tmp_path / "ws", "feature", s3_server)
    secrets = {
        "DVC_REMOTE_URL": f"s3://{bucket}/store",
        "AWS_ACCESS_KEY_ID": "testing",
        "CML_PUBLISH_ASSETS": "true",
    }
    run = run_job(
        "pr-report", "report", ws, env=flow_env(tmp_path, s3_server), secrets=secrets,
        github=pr_github(),
    )  # fmt: skip
    report_run("pr-report publish", run)
    assert run.status == "success", run.log()
    (call,) = [c for c in stub_calls(tmp_path / "stubs.jsonl") if c["tool"] == "cml"]
    assert call["args"][-1] == "report.md"
    assert call["uploads"]
    assert call["missing"] == []
    assert "model_card.md" in call["uploads"]


def test_pr_report_fails_on_a_stale_dvc_lock(
    pr_origin: Path, s3_server: str, tmp_path: Path
) -> None:
    bucket = (tmp_path / "bucket").read_text()
    ws = clone(pr_origin, tmp_path / "ws", "feature", s3_server)
    set_quality(ws, 0.9)  # params changed, dvc.lock not reproduced: the PR forgot dvc.lock
    sh("git", "commit", "-q", "-am", "tune, forgot dvc repro", cwd=ws)
    secrets = {"DVC_REMOTE_URL": f"s3://{bucket}/store", "AWS_ACCESS_KEY_ID": "testing"}
    run = run_job(
        "pr-report", "report", ws, env=flow_env(tmp_path, s3_server), secrets=secrets,
        github=pr_github(),
    )  # fmt: skip
    report_run("pr-report stale lock", run)
    assert run.status == "failure"
    failed = [s.name for s in run.steps if s.status == "failed"]
    assert failed == ["dvc.lock in sync with the code, params and data"]
    assert "dvc.lock out of date" in run.summary
    assert [c for c in stub_calls(tmp_path / "stubs.jsonl") if c["tool"] == "cml"] == []


def test_pr_report_from_a_fork_says_why_there_is_no_report(tmp_path: Path) -> None:
    gh = pr_github()
    gh["event"]["pull_request"]["head"]["repo"]["full_name"] = "someone/movie-success"
    ws = tmp_path / "ws"
    ws.mkdir()
    env = flow_env(tmp_path, "")
    report = run_job("pr-report", "report", ws, env=env, github=gh)
    assert report.status == "skipped"
    notice = run_job("pr-report", "fork-notice", ws, env=env, github=gh)
    assert notice.status == "success"
    assert "comes from a fork" in notice.summary


# ---------------------------------------------------------------- retrain
# The real pipeline (`collect.source: tmdb`) on real films, ../shared/data/tmdb-dev.jsonl.gz,
# served by the TMDB double (tests/tmdb_server.py) that the collector reaches through
# TMDB_API_BASE_URL with the token the workflow passes as TMDB_API_TOKEN. A small slice: films
# from RELEASE_GTE, one test year (prepare.test_years 1, maturity 365 days), so the model is
# trained on the years before the test year and a snapshot moved within that year retrains
# nothing. The TMDB cache is carried from run to run as actions/cache restores it.

TMDB_SECRET = "tmdb-flow-token-5c1d"
RELEASE_GTE = "2000-01-01"
BASE_DATE = "2009-06-01"  # main: test 2007-01-01 to 2008-06-01, train before 2007
GOOD_DATE = "2010-06-01"  # a year on: test from 2008, train before 2008 (a new model)
GATED_DATE = "2011-06-01"  # test from 2009; TMDB has lost the budgets from DAMAGED_FROM on
DAMAGED_FROM = "2009-06-15"
NEXT_DAY = "2009-06-02"  # the day after main's: no film released then, none matures


@pytest.fixture(scope="module")
def tmdb() -> Iterator[FakeTmdb]:
    with FakeTmdb.from_jsonl(tmdb_dev(), TMDB_SECRET) as server:
        yield server


def tmdb_env(env: dict[str, str], tmdb: FakeTmdb) -> dict[str, str]:
    """`env` pointed at the double (the token comes from the workflow's secret)."""
    env = {k: v for k, v in env.items() if not k.startswith("TMDB_")}
    env["TMDB_API_BASE_URL"] = tmdb.url
    return env


@pytest.fixture(scope="module")
def retrain_base(s3_server: str, tmdb: FakeTmdb, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project on TMDB films up to BASE_DATE, reproduced and committed on main, its
    outputs and run-cache in the S3 remote (the champion), its TMDB cache in data/cache."""
    repo = copy_project(tmp_path_factory.mktemp("retrain-flow") / "dev")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["collect"].update(
        source="tmdb",
        release_date_gte=RELEASE_GTE,
        release_date_lte=BASE_DATE,
        rate_limit=2000,  # the double, not TMDB
        concurrency=8,
    )
    params["prepare"]["test_years"] = 1
    params["backtest"]["years"] = 2  # fewer refits and resamples: the flow, not the figures
    params["evaluate"].update(bootstrap_rounds=200, permutation_repeats=1)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    env = tmdb_env(tool_env(), tmdb)
    env["TMDB_API_TOKEN"] = TMDB_SECRET
    env.pop("PUSHGATEWAY_URL", None)
    sh("dvc", "repro", "-q", cwd=repo, env=env)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-q", "-m", f"base: data up to {BASE_DATE}", cwd=repo)
    make_bucket(s3_server, "retrain-flow")
    sh("dvc", "remote", "modify", "--local", "storage", "url", "s3://retrain-flow/s", cwd=repo)
    sh("dvc", "remote", "modify", "--local", "storage", "endpointurl", s3_server, cwd=repo)
    sh("dvc", "push", "-q", "--run-cache", cwd=repo, env=aws_env())
    return repo


def retrain_run(
    origin: Path, tmp: Path, s3: str, tmdb: FakeTmdb, day: str, name: str, cache_from: Path
) -> tuple[JobRun, Path]:
    """The retrain job in a fresh clone, with the TMDB cache of `cache_from` restored (what
    actions/cache/restore does with restore-keys `tmdb-`: the latest run's)."""
    ws = clone(origin, tmp / name, "main", s3)
    cache = Path("data") / "cache" / "tmdb"
    shutil.copytree(cache_from / cache, ws / cache)
    secrets = {
        "DVC_REMOTE_URL": "s3://retrain-flow/s",
        "AWS_ACCESS_KEY_ID": "testing",
        "TMDB_API_TOKEN": TMDB_SECRET,
    }
    run = run_job(
        "retrain",
        "retrain",
        ws,
        env=tmdb_env(flow_env(tmp, s3), tmdb),
        secrets=secrets,
        github={"event_name": "workflow_dispatch"},
        inputs={"date": day},
    )
    report_run(f"retrain {name} ({day})", run)
    return run, ws


def origin_branches(origin: Path) -> dict[str, str]:
    out = sh(
        "git", "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads",
        cwd=origin,
    ).stdout  # fmt: skip
    return dict(line.split() for line in out.splitlines())


def fetched_since(tmdb: FakeTmdb, n: int) -> list[int]:
    """The films the double answered /movie/{id} for after its first `n` detail requests."""
    return sorted(tmdb.detail_ids()[n:])


def released(tmdb: FakeTmdb, gte: str, lte: str) -> list[int]:
    return sorted(f.id for f in tmdb.in_range(gte, lte))


def decision(ws: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ws / "report" / "retrain" / "decision.json").read_text())
    return data


def test_retrain_commit_then_gated_update_one_branch_then_nothing(
    retrain_base: Path, tmdb: FakeTmdb, s3_server: str, tmp_path: Path
) -> None:
    origin = bare_origin(retrain_base, tmp_path / "origin.git")
    main_before = origin_branches(origin)["main"]
    model_md5 = lock_md5(retrain_base, "train", "models/model.skops")

    # 1. A year on, TMDB unchanged: only the newly released films are fetched; the new model
    # passes the gate: one commit on retrain/next, one PR, auto-merge; checks will run on it.
    n = len(tmdb.detail_ids())
    run, ws = retrain_run(origin, tmp_path, s3_server, tmdb, GOOD_DATE, "commit", retrain_base)
    assert run.status == "success", run.log()
    assert run.outputs["retrain"]["code"] == "0"
    assert fetched_since(tmdb, n) == released(tmdb, NEXT_DAY, GOOD_DATE)
    assert decision(ws)["reasons"] == []
    branches = origin_branches(origin)
    assert branches["main"] == main_before  # never pushed to (protected) main
    assert set(branches) == {"main", "retrain/next"}
    msg = sh("git", "log", "-1", "--format=%B", "retrain/next", cwd=origin).stdout
    assert msg.startswith(f"retrain: data up to {GOOD_DATE}")
    assert "[skip ci]" not in msg
    parent = sh("git", "rev-parse", "retrain/next~1", cwd=origin).stdout.strip()
    assert parent == main_before
    changed = sh("git", "diff", "--name-only", "main", "retrain/next", cwd=origin).stdout.split()
    assert sorted(changed) == ["dvc.lock", "params.yaml"]
    lock = yaml.safe_load(sh("git", "show", "retrain/next:dvc.lock", cwd=origin).stdout)
    assert lock["stages"]["collect"]["params"]["params.yaml"]["collect"]["source"] == "tmdb"
    assert "GITHUB_TOKEN" in run.summary  # no App/RETRAIN_TOKEN: the warning says so
    exps = sh("git", "for-each-ref", "--format=%(refname)", "refs/exps", cwd=origin).stdout
    assert f"retrain-{GOOD_DATE}" in exps  # the run is an experiment, shared on origin
    gh = [c for c in stub_calls(tmp_path / "stubs.jsonl") if c["tool"] == "gh"]
    cmds = [c["args"][:2] for c in gh]
    assert ["pr", "create"] in cmds
    assert ["pr", "merge"] in cmds
    create = next(c for c in gh if c["args"][:2] == ["pr", "create"])
    assert "passed the gate" in create["body"]
    assert "![" not in create["body"]  # images replaced by artifact links
    state = json.loads((tmp_path / "stubs-state.json").read_text())
    assert list(state["prs"]) == ["1"]
    assert state["prs"]["1"]["auto"] is True
    first = origin_branches(origin)["retrain/next"]

    # 2. TMDB has since lost the budgets of every film released from DAMAGED_FROM on (listed
    # in /movie/changes): those in the cache are fetched again, the test year keeps too few
    # films, validation fails: the same branch is replaced, the same PR edited, no auto-merge.
    damaged = [f.id for f in tmdb.films if f.release_date >= DAMAGED_FROM]
    tmdb.change(damaged, edit={"budget": 0})
    n = len(tmdb.detail_ids())
    run, ws = retrain_run(origin, tmp_path, s3_server, tmdb, GATED_DATE, "gated", ws)
    assert run.status == "success", run.log()
    assert run.outputs["retrain"]["code"] == "10"
    cached = set(released(tmdb, RELEASE_GTE, GOOD_DATE)) & set(damaged)
    new = set(released(tmdb, "2010-06-02", GATED_DATE))
    assert fetched_since(tmdb, n) == sorted(cached | new)
    assert decision(ws)["reasons"][0] == "data validation did not pass: enough_test_rows"
    branches = origin_branches(origin)
    assert set(branches) == {"main", "retrain/next"}
    assert branches["retrain/next"] != first
    assert branches["main"] == main_before
    msg = sh("git", "log", "-1", "--format=%B", "retrain/next", cwd=origin).stdout
    assert msg.startswith(f"retrain: data up to {GATED_DATE}")
    state = json.loads((tmp_path / "stubs-state.json").read_text())
    assert list(state["prs"]) == ["1"]
    assert state["prs"]["1"]["title"].endswith("(gated: needs review)")
    assert state["prs"]["1"]["auto"] is False
    assert "enough_test_rows" in state["prs"]["1"]["body"]
    calls_before = len(stub_calls(tmp_path / "stubs.jsonl"))

    # 3. The day after main's snapshot (a manual run): nothing TMDB lists for it changed and
    # no film was released or matured, so the model is main's: no fetch, commit, push or PR.
    n = len(tmdb.detail_ids())
    run, ws = retrain_run(origin, tmp_path, s3_server, tmdb, NEXT_DAY, "nothing", ws)
    assert run.status == "success", run.log()
    assert run.outputs["retrain"]["code"] == "3"
    assert fetched_since(tmdb, n) == []
    assert decision(ws)["reasons"] == [
        f"the new models/model.skops is the base's (md5 {model_md5})"
    ]
    assert origin_branches(origin) == branches
    assert len(stub_calls(tmp_path / "stubs.jsonl")) == calls_before
    assert "Commit to retrain/next, rebase on main, push, open or update the PR" in run.skipped(
        "skipped-if"
    )


@pytest.fixture
def publish_origin(tmp_path: Path) -> Path:
    """main of a repository with what scripts/retrain-publish.sh commits (params.yaml,
    dvc.lock) and the scripts themselves."""
    repo = tmp_path / "dev"
    repo.mkdir()
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    shutil.copytree(ROOT / "scripts", repo / "scripts")
    (repo / "params.yaml").write_text('collect:\n  release_date_lte: "2010-12-31"\n')
    (repo / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    (repo / ".gitignore").write_text("/report/\n")
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-q", "-m", "base", cwd=repo)
    return bare_origin(repo, tmp_path / "origin.git")


def test_retrain_publish_rebases_on_a_moved_main_once(publish_origin: Path, tmp_path: Path) -> None:
    """main moved during the run: the commit is rebased on it before the push."""
    origin = publish_origin
    ws, other = tmp_path / "ws", tmp_path / "other"
    for dest in (ws, other):
        sh("git", "clone", "-q", "--branch", "main", f"file://{origin}", str(dest), cwd=tmp_path)
    (other / "NOTES.md").write_text("a teammate's change\n")
    sh("git", "add", "NOTES.md", cwd=other)
    sh("git", "commit", "-q", "-m", "docs", cwd=other)
    sh("git", "push", "-q", "origin", "main", cwd=other)
    (ws / "params.yaml").write_text((ws / "params.yaml").read_text() + "# retrained\n")
    (ws / "report").mkdir()
    (ws / "report" / "pr-body.md").write_text("# Retrain\n\n![roc](plot_roc.png)\n")
    env = flow_env(tmp_path, "")
    env.update(CODE="0", DAY="2011-12-31", GH_TOKEN="x", GITHUB_STEP_SUMMARY=str(tmp_path / "s"))
    sh("bash", "scripts/retrain-publish.sh", cwd=ws, env=env)
    log = sh("git", "log", "--format=%s", "retrain/next", cwd=origin).stdout.splitlines()
    assert log[:2] == ["retrain: data up to 2011-12-31", "docs"]
