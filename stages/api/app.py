"""The HTTP service: app factory, model loaded once in the lifespan handler, thin routes."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from threadpoolctl import threadpool_limits

from stages.api.batching import MicroBatcher
from stages.api.metrics import MetricsMiddleware, ServiceMetrics
from stages.api.settings import UNKNOWN, Settings, file_md5, model_from_lock
from stages.model.artifact import Model, load_model_isolated
from stages.scoring.score import (
    MOVIE_FIELDS,
    Movie,
    Prediction,
    Problem,
    known_genres,
    predictions,
    score,
    to_columns,
    validate_batch,
)

log = logging.getLogger(__name__)

# One validated movie: its MOVIE_FIELDS values, in that order (what the batcher queues).
Row = tuple[Any, ...]


@dataclass(frozen=True)
class Service:
    """What the lifespan handler builds once: the model and everything derived from it."""

    model: Model
    genres: frozenset[str]
    version: dict[str, str]
    batcher: MicroBatcher[Row, Prediction]


def score_rows(model: Model, rows: Sequence[Row]) -> list[Prediction]:
    """Validated movies (of one or several requests) scored together by score()."""
    columns = to_columns(dict(zip(MOVIE_FIELDS, zip(*rows, strict=True), strict=True)))
    return predictions(columns["title"].tolist(), score(model, columns))


def _version(settings: Settings) -> dict[str, str]:
    """dvc.lock's md5 only describes the model if it is the file dvc.lock records."""
    ref = model_from_lock(settings.dvc_lock)
    recorded = ref is not None and (
        (settings.dvc_lock.parent / ref.path).resolve() == settings.model_path.resolve()
    )
    return {
        "model_path": str(settings.model_path),
        "model_md5": ref.md5 if ref is not None and recorded else UNKNOWN,
        "model_file_md5": file_md5(settings.model_path),
        "git_sha": settings.git_sha,
    }


def _invalid(problems: list[Problem], prefix: tuple[str | int, ...]) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": [*prefix, *p.loc], "msg": p.msg, "type": p.type} for p in problems]
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is larger than `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body of {declared} bytes exceeds MAX_BODY_BYTES={limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"body exceeds MAX_BODY_BYTES={limit}; split the list")
    return bytes(body)


def _movies(body: bytes, max_items: int) -> tuple[list[Any], bool]:
    """The request's movies as parsed JSON, and whether it sent one (an object) rather than a
    list; 422 for what is not a movie or a non-empty list, 413 above `max_items`."""
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _invalid(
            [Problem((), f"not valid JSON ({exc})", "json_invalid")], ("body",)
        ) from None
    single = isinstance(payload, dict)
    raw = [payload] if single else payload
    if not isinstance(raw, list):
        msg = "expected a movie (JSON object) or a list of movies (JSON array)"
        raise _invalid([Problem((), msg, "type")], ("body",))
    if not raw:
        raise _invalid([Problem((), "empty list; send at least one movie", "too_short")], ("body",))
    if len(raw) > max_items:
        raise HTTPException(
            413, f"list of {len(raw)} movies exceeds MAX_ITEMS={max_items}; split it"
        )
    return raw, single


def _refused(refused: Mapping[int, list[Problem]], single: bool) -> RequestValidationError:
    """Every refused movie's problems, located in the body (a list's by position)."""
    return _invalid(
        [
            Problem((*(() if single else (i,)), *p.loc), p.msg, p.type)
            for i, problems in refused.items()
            for p in problems
        ],
        ("body",),
    )


def create_app(settings: Settings) -> FastAPI:
    metrics = ServiceMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # UserError with one clear line if missing; loaded in a child process so the service
        # does not keep skops' import of every sklearn estimator
        model = load_model_isolated(settings.model_path)
        version = _version(settings)

        def limit_threads() -> None:
            # OpenMP's per-thread limit: spinning tree-predict threads fight the event loop
            # (and any neighbour) for the cores; batching already amortizes the model call.
            threadpool_limits(settings.model_threads, user_api="openmp")

        batcher: MicroBatcher[Row, Prediction] = MicroBatcher(
            partial(score_rows, model),
            settings.max_batch,
            on_batch=metrics.batch_size.observe,
            initializer=limit_threads,
        )
        await batcher.start()
        app.state.service = Service(model, known_genres(model), version, batcher)
        metrics.model_info.info(version)
        metrics.model_loaded.set(1)
        log.info("serve: model %s loaded (md5 %s)", settings.model_path, version["model_md5"])
        try:
            yield
        finally:
            metrics.model_loaded.set(0)
            await batcher.stop()

    app = FastAPI(
        title="movie-success",
        description="Scores films from pre-release information: P(success) and revenue.",
        lifespan=lifespan,
    )
    app.state.service = None
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    def service(request: Request) -> Service:
        svc: Service | None = request.app.state.service
        if svc is None:
            raise HTTPException(503, "model not loaded yet; retry shortly")
        return svc

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up (liveness)."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> dict[str, str]:
        """The model is loaded (readiness)."""
        service(request)
        return {"status": "ready"}

    @app.get("/version")
    async def version(request: Request) -> dict[str, str]:
        """The model's md5 recorded in dvc.lock, the loaded file's md5, and the git sha."""
        return service(request).version

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/predict",
        response_model=Prediction | list[Prediction],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/Movie"},
                                {"type": "array", "items": {"$ref": "#/components/schemas/Movie"}},
                            ]
                        }
                    }
                },
            }
        },
    )
    async def predict(request: Request) -> Response:
        """Score one movie (a JSON object) or a list of them (a JSON array, same order)."""
        svc = service(request)
        body = await _read_body(request, settings.max_body_bytes)
        raw, single = _movies(body, settings.max_items)
        valid = validate_batch(raw, svc.genres)
        if valid.refused:
            raise _refused(valid.refused, single)
        rows = list(zip(*(valid.columns[name] for name in MOVIE_FIELDS), strict=True))
        scored = await svc.batcher.submit(rows)
        metrics.predictions.inc(len(scored))
        out = [p.model_dump() for p in scored]
        return JSONResponse(out[0] if single else out)

    _register_movie_schema(app)
    return app


def _register_movie_schema(app: FastAPI) -> None:
    """Publish the Movie input schema in the OpenAPI document (the body is parsed by hand)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schema.setdefault("components", {}).setdefault("schemas", {})[
                "Movie"
            ] = Movie.model_json_schema()
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
