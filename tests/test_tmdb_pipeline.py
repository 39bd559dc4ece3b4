"""End to end on real TMDB films: the real `dvc repro` in a copy of the project, collecting
../shared/data/tmdb-dev.jsonl.gz through the TMDB double, then the daily re-runs.

Skips where ../shared is absent (fails under REQUIRE_TOOLS=1): see tests/require.py.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.require import tmdb_dev
from tests.support import sh, tool_env
from tests.tmdb_server import FakeTmdb

pytestmark = pytest.mark.e2e

SECRET = "tmdb-pipeline-token-3b9f0e"


@pytest.fixture
def tmdb() -> Iterator[FakeTmdb]:
    with FakeTmdb.from_jsonl(tmdb_dev(), SECRET) as server:
        yield server


def use_tmdb(repo: Path) -> None:
    """params.yaml of the copy: TMDB 1980-2012, snapshot 2012-12-31, test on 2008-2011."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["collect"].update(
        source="tmdb",
        release_date_gte="1980-01-01",
        release_date_lte="2012-12-31",
        rate_limit=2000,  # the double, not TMDB: no need to wait
        concurrency=8,
    )
    params["prepare"]["test_years"] = 4
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def env_for(tmdb: FakeTmdb) -> dict[str, str]:
    env = tool_env({"TMDB_API_BASE_URL": tmdb.url, "TMDB_API_TOKEN": SECRET})
    env.pop("TMDB_API_KEY", None)
    env.pop("PUSHGATEWAY_URL", None)
    return env


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def test_pipeline_on_real_tmdb_films_then_daily_reruns(project_repo: Path, tmdb: FakeTmdb) -> None:
    repo, env = project_repo, env_for(tmdb)
    use_tmdb(repo)
    sh("dvc", "repro", cwd=repo, env=env)

    collected = read_json(repo / "data/raw/summary.json")
    in_range = [f for f in tmdb.films if "1980-01-01" <= f.release_date <= "2012-12-31"]
    assert collected["movies"] == len(in_range) > 3000
    assert sorted(tmdb.detail_ids()) == sorted(f.id for f in in_range)
    report = read_json(repo / "data/prepared/validation.json")
    assert report["passed"], report["checks"]
    assert report["fixed"].get("century_shifted", 0) == 0  # a TMDB date is never shifted
    assert report["dropped"].get("release_after_snapshot", 0) == 0
    assert report["label"]["snapshot_date"] == "2012-12-31"
    assert report["label"]["test_start_date"] == "2008-01-01"
    assert report["train"]["last_release"] < "2008-01-01" <= report["test"]["first_release"]
    assert report["test"]["last_release"] <= "2011-12-31"  # 2012 is not mature yet
    with open(repo / "models/plots/importance.csv", newline="") as fh:
        features = {row["feature"] for row in csv.DictReader(fh)}
    assert "n_keywords" not in features
    assert not any("keyword" in f for f in features)
    assert {"director_prior_films", "cast_prior_films"} <= features
    assert any(f.startswith("source_material=") for f in features)  # from the keyword list
    card = (repo / "models/model_card.md").read_text()
    assert "ROC AUC" in card
    assert "roc_auc" in read_json(repo / "models/metrics.json")

    # The daily re-run with the same snapshot: collect must run (DVC would skip it, its
    # params being unchanged), TMDB has changed nothing, so nothing is fetched or rewritten.
    lock = (repo / "dvc.lock").read_text()
    n = len(tmdb.detail_ids())
    sh("dvc", "repro", "--force", "--single-item", "collect", cwd=repo, env=env)
    sh("dvc", "repro", cwd=repo, env=env)
    assert tmdb.detail_ids()[n:] == []
    assert (repo / "dvc.lock").read_text() == lock
    assert sh("dvc", "status", "--json", cwd=repo, env=env).stdout.strip() == "{}"

    # 50 films changed today: exactly those are fetched again.
    changed = sorted(random.Random(5).sample([f.id for f in in_range], 50))
    tmdb.change(changed)
    sh("dvc", "repro", "--force", "--single-item", "collect", cwd=repo, env=env)
    sh("dvc", "repro", cwd=repo, env=env)
    assert sorted(tmdb.detail_ids()[n:]) == changed
    run = read_json(repo / "data/cache/tmdb/last_run.json")["run"]
    assert run["changed_marked_stale"] == run["fetched"] == 50
    assert (repo / "dvc.lock").read_text() == lock  # the same objects: the same records
