"""The real app (real model, real middleware) through FastAPI's TestClient."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from stages.api.app import create_app
from stages.api.settings import Settings
from stages.core.cli import UserError
from stages.model.artifact import load_model
from stages.scoring.score import score, to_columns, validate_batch

MOVIE: dict[str, Any] = {
    "title": "New Film",
    "release_date": "2010-06-18",
    "budget": 40_000_000,
    "runtime": 110,
    "genres": ["Action", "Adventure"],
    "certification": "PG-13",
    "distributor": "Universal",
}


def settings_for(model: Path, lock: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "model_path": model,
        "dvc_lock": lock,
        "host": "127.0.0.1",
        "port": 8000,
        "max_items": 5,
        "max_body_bytes": 20_000,
        "max_batch": 64,
        "model_threads": 1,
        "fast_path": 1,
        "git_sha": "abc123",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
def lock(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lock") / "dvc.lock"
    path.write_text(
        "schema: '2.0'\nstages:\n  train:\n    outs:\n"
        f"    - path: {model_path}\n      hash: md5\n      md5: 0123abcd\n"
    )
    return path


@pytest.fixture(scope="module")
def client(model_path: Path, lock: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(model_path, lock))) as c:
        yield c


def detail_locs(resp: Any) -> list[list[Any]]:
    return [d["loc"] for d in resp.json()["detail"]]


def test_health_ready_version(client: TestClient, model_path: Path) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    v = client.get("/version").json()
    assert v["model_md5"] == "0123abcd"
    assert v["model_file_md5"] == hashlib.md5(model_path.read_bytes()).hexdigest()
    assert v["git_sha"] == "abc123"


def test_single_movie_matches_the_model(client: TestClient, model_path: Path) -> None:
    resp = client.post("/predict", json=MOVIE)
    assert resp.status_code == 200
    body = resp.json()
    expected = score(load_model(model_path), to_columns(validate_batch([MOVIE], None).columns))
    assert body["title"] == "New Film"
    assert body["success_probability"] == pytest.approx(expected.success_probability[0], abs=1e-6)
    assert body["predicted_revenue"] == pytest.approx(expected.predicted_revenue[0], abs=0.01)
    assert body["success"] == bool(expected.success[0])


def test_list_keeps_order_and_batches_equal_singles(client: TestClient) -> None:
    movies = [dict(MOVIE, title=f"F{i}", budget=(i + 1) * 10_000_000) for i in range(4)]
    batch = client.post("/predict", json=movies).json()
    singles = [client.post("/predict", json=m).json() for m in movies]
    assert [b["title"] for b in batch] == ["F0", "F1", "F2", "F3"]
    assert batch == singles
    assert len({b["predicted_revenue"] for b in batch}) > 1  # the budget matters


@pytest.mark.parametrize(
    ("payload", "loc", "fragment"),
    [
        (dict(MOVIE, budget=-5), ["body", "budget"], "greater than 0"),
        (dict(MOVIE, budget="lots"), ["body", "budget"], "valid integer"),
        (dict(MOVIE, release_date="soon"), ["body", "release_date"], "valid date"),
        (dict(MOVIE, genres=["Space Opera"]), ["body", "genres", 0], "unknown genre 'Space Opera'"),
        (dict(MOVIE, revenue=1), ["body", "revenue"], "post-release field"),
        ({"budget": 1}, ["body", "title"], "Field required"),
        ([], ["body"], "empty list"),
        ([MOVIE, dict(MOVIE, runtime=0)], ["body", 1, "runtime"], "greater than 0"),
        ("a string", ["body"], "expected a movie"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    client: TestClient, payload: Any, loc: list[Any], fragment: str
) -> None:
    resp = client.post("/predict", json=payload)
    assert resp.status_code == 422
    assert loc in detail_locs(resp)
    assert fragment in " ".join(d["msg"] for d in resp.json()["detail"])


def test_malformed_json_is_422(client: TestClient) -> None:
    resp = client.post(
        "/predict", content=b'{"title": ', headers={"content-type": "application/json"}
    )
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["type"] == "json_invalid"


def test_oversized_list_and_body_are_413(client: TestClient) -> None:
    resp = client.post("/predict", json=[MOVIE] * 6)
    assert resp.status_code == 413
    assert "exceeds MAX_ITEMS=5" in resp.json()["detail"]
    resp = client.post("/predict", json=dict(MOVIE, title="x" * 30_000))
    assert resp.status_code == 413
    assert "MAX_BODY_BYTES" in resp.json()["detail"]


def test_service_keeps_serving_after_bad_requests(client: TestClient) -> None:
    for bad in (b"nope", b"[]", b"{}"):
        assert client.post("/predict", content=bad).status_code == 422
    assert client.post("/predict", json=MOVIE).status_code == 200


def metric_samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_metrics_count_requests_latency_predictions(client: TestClient) -> None:
    before = metric_samples(client)
    ok = (("method", "POST"), ("route", "/predict"), ("status", "200"))
    bad = (("method", "POST"), ("route", "/predict"), ("status", "422"))
    client.post("/predict", json=[MOVIE, MOVIE])
    client.post("/predict", json=dict(MOVIE, budget=0))
    client.get("/no/such/path")
    after = metric_samples(client)

    def delta(key: tuple[str, tuple[tuple[str, str], ...]]) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta(("http_requests_total", ok)) == 1
    assert delta(("http_requests_total", bad)) == 1
    assert delta(("http_request_duration_seconds_count", ok)) == 1
    assert delta(("predictions_total", ())) == 2
    unmatched = (("method", "GET"), ("route", "unmatched"), ("status", "404"))
    assert delta(("http_requests_total", unmatched)) == 1
    info = [k for k in after if k[0] == "model_info"]
    assert len(info) == 1
    assert ("model_md5", "0123abcd") in info[0][1]
    assert ("fast_path", "on") in info[0][1]
    assert after[("model_loaded", ())] == 1


def test_fast_path_off_scores_the_same_and_says_so(
    client: TestClient, model_path: Path, lock: Path
) -> None:
    movies = [dict(MOVIE, title=f"F{i}", budget=(i + 1) * 7_000_000) for i in range(5)]
    with TestClient(create_app(settings_for(model_path, lock, fast_path=0))) as public:
        assert public.post("/predict", json=movies).json() == (
            client.post("/predict", json=movies).json()
        )
        info = [k for k in metric_samples(public) if k[0] == "model_info"]
    assert ("fast_path", "off") in info[0][1]


def test_openapi_documents_the_movie_schema(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "budget" in schema["components"]["schemas"]["Movie"]["properties"]


def test_missing_model_is_a_clear_startup_error(tmp_path: Path, lock: Path) -> None:
    app = create_app(settings_for(tmp_path / "none.skops", lock))
    with pytest.raises(UserError, match="model not found"), TestClient(app):
        pass


def test_concurrent_requests_share_batches(model_path: Path, lock: Path) -> None:
    """Under concurrency the batcher scores several requests in one model call, correctly."""
    import concurrent.futures

    with TestClient(create_app(settings_for(model_path, lock, max_items=64))) as c:
        movies = [dict(MOVIE, title=f"C{i}", budget=(i + 1) * 1_000_000) for i in range(32)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda m: c.post("/predict", json=m).json(), movies))
        alone = c.post("/predict", json=movies).json()
        assert results == alone
        s = metric_samples(c)
    calls = s[("prediction_batch_size_count", ())]
    assert s[("prediction_batch_size_sum", ())] == 32 + 32
    assert calls < 33  # at least one model call served more than one request
    assert np.isfinite([r["success_probability"] for r in results]).all()


def test_settings_from_env_use_the_lock(tmp_path: Path) -> None:
    lock = tmp_path / "dvc.lock"
    lock.write_text("stages:\n  train:\n    outs:\n    - path: models/m.skops\n      md5: ff\n")
    s = Settings.from_env({"DVC_LOCK": str(lock), "GIT_SHA": "sha1", "PORT": "9001"})
    assert (s.model_path, s.port, s.git_sha) == (Path("models/m.skops"), 9001, "sha1")
    assert Settings.from_env({"MODEL_PATH": "x.skops", "DVC_LOCK": str(lock)}).model_path == Path(
        "x.skops"
    )
    with pytest.raises(UserError, match="PORT='abc' is not an integer"):
        Settings.from_env({"DVC_LOCK": str(lock), "PORT": "abc"})
    with pytest.raises(UserError, match="no 'train' model output found"):
        Settings.from_env({"DVC_LOCK": str(tmp_path / "none.lock")})
