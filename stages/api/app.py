"""The HTTP service: app factory, model loaded once in the lifespan handler, thin routes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import pydantic_core
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
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
    Validated,
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


SHOWN_PROBLEMS = 20  # a refused body reports its first problems and how many there are
SHOWN_CHARS = 200  # of each location part and message (a key may be a megabyte long)
INLINE_BYTES = 16_384  # bodies above this are parsed and validated in a worker thread


class ErrorBody(BaseModel):
    """A refused request (413 too large, 503 not ready): what is wrong and what to do."""

    detail: str


class ProblemBody(BaseModel):
    """One reason a body was refused: where in the body, why, and pydantic's error type."""

    loc: list[str | int]
    msg: str
    type: str


class RefusedBody(BaseModel):
    """A body refused with 422: its first problems (up to SHOWN_PROBLEMS) and their count."""

    detail: list[ProblemBody] = Field(max_length=SHOWN_PROBLEMS)
    count: int = Field(ge=1, description="problems found in the body (detail lists the first)")


class Refused(Exception):
    """A body refused with 422 (rendered by create_app's handler as a RefusedBody): its
    first problems and how many there are in all."""

    def __init__(self, problems: list[Problem], count: int | None = None) -> None:
        super().__init__(f"{count or len(problems)} problems")
        self.problems = problems[:SHOWN_PROBLEMS]
        self.count = len(problems) if count is None else count

    def body(self) -> dict[str, Any]:
        return {
            "detail": [
                {
                    "loc": ["body", *(_short(p) for p in problem.loc)],
                    "msg": _short(problem.msg),
                    "type": problem.type,
                }
                for problem in self.problems
            ],
            "count": self.count,
        }


def _short(part: str | int) -> str | int:
    if isinstance(part, str) and len(part) > SHOWN_CHARS:
        return part[:SHOWN_CHARS] + "…"
    return part


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is larger than `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and len(declared) < 20 and int(declared) > limit:
        raise HTTPException(413, f"body of {declared} bytes exceeds MAX_BODY_BYTES={limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"body exceeds MAX_BODY_BYTES={limit}; split the list")
    return bytes(body)


def _movies(body: bytes, max_items: int) -> tuple[list[Any], bool]:
    """The request's movies as parsed JSON, and whether it sent one (an object) rather than a
    list; 422 for what is not JSON (bad UTF-8, nesting over 200 levels, a number over 4300
    digits, NaN), not a movie or a non-empty list, 413 above `max_items`."""
    try:
        payload = pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as exc:  # the parser's reason and position
        raise Refused([Problem((), f"not valid JSON: {exc}", "json_invalid")]) from None
    single = isinstance(payload, dict)
    raw = [payload] if single else payload
    if not isinstance(raw, list):
        msg = "expected a movie (JSON object) or a list of movies (JSON array)"
        raise Refused([Problem((), msg, "type")])
    if not raw:
        raise Refused([Problem((), "empty list; send at least one movie", "too_short")])
    if len(raw) > max_items:
        raise HTTPException(
            413, f"list of {len(raw)} movies exceeds MAX_ITEMS={max_items}; split it"
        )
    return raw, single


def _refused(valid: Validated, single: bool) -> Refused:
    """The refused movies' first problems, located in the body (a list's by position), and
    the count of all of them."""
    shown = [
        Problem((*(() if single else (i,)), *p.loc), p.msg, p.type)
        for i, problems in itertools.islice(valid.refused.items(), SHOWN_PROBLEMS)
        for p in problems[:SHOWN_PROBLEMS]
    ]
    return Refused(shown, valid.problem_count)


def check_body(body: bytes, max_items: int, genres: frozenset[str]) -> tuple[Validated, bool]:
    """The body parsed and validated (Refused or HTTPException 413 if it is not acceptable)."""
    raw, single = _movies(body, max_items)
    valid = validate_batch(raw, genres, detail=SHOWN_PROBLEMS)
    if valid.refused:
        raise _refused(valid, single)
    return valid, single


def create_app(settings: Settings, model: Model | None = None) -> FastAPI:
    """The service; `model` is loaded at start-up unless given (stages.serve loads it before
    the server starts, so that a refused model is one line and exit 2)."""
    metrics = ServiceMetrics()
    preloaded = model
    validator = ThreadPoolExecutor(max_workers=1, thread_name_prefix="validate")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # UserError with one clear line if missing; loaded in a child process so the service
        # does not keep skops' import of every sklearn estimator
        model = preloaded or load_model_isolated(settings.model_path)
        if not settings.fast_path:
            log.warning("serve: FAST_PATH=0, scoring on scikit-learn's public path only")
            model = model.public_only()
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
        metrics.model_info.info({**version, "fast_path": model.fast_path})
        metrics.model_loaded.set(1)
        log.info("serve: model %s loaded (md5 %s)", settings.model_path, version["model_md5"])
        try:
            yield
        finally:
            metrics.model_loaded.set(0)
            await batcher.stop()
            validator.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="movie-success",
        description="Scores films from pre-release information: P(success) and revenue.",
        lifespan=lifespan,
    )
    app.state.service = None
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=422)

    def service(request: Request) -> Service:
        svc: Service | None = request.app.state.service
        if svc is None:
            raise HTTPException(503, "model not loaded yet; retry shortly")
        return svc

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up (liveness)."""
        return {"status": "ok"}

    not_ready: dict[int | str, dict[str, Any]] = {
        503: {"model": ErrorBody, "description": "the model is not loaded yet"}
    }

    @app.get("/readyz", responses=not_ready)
    async def readyz(request: Request) -> dict[str, str]:
        """The model is loaded (readiness)."""
        service(request)
        return {"status": "ready"}

    @app.get("/version", responses=not_ready)
    async def version(request: Request) -> dict[str, str]:
        """The model's md5 recorded in dvc.lock, the loaded file's md5, and the git sha."""
        return service(request).version

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus_metrics() -> Response:
        """Prometheus' text exposition format."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/predict",
        response_model=Prediction | list[Prediction],
        responses={
            413: {"model": ErrorBody, "description": "over MAX_BODY_BYTES or MAX_ITEMS"},
            422: {"model": RefusedBody, "description": "not JSON, or movies refused"},
            **not_ready,
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/Movie"},
                                {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Movie"},
                                    "minItems": 1,
                                    "description": f"at most MAX_ITEMS={settings.max_items} "
                                    "movies (else 413)",
                                },
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
        if len(body) <= INLINE_BYTES:
            valid, single = check_body(body, settings.max_items, svc.genres)
        else:  # parsing, validation and a refusal's problems take a while: off the event loop
            # one at a time: each thread holding the GIL delays the event loop (and /healthz)
            valid, single = await asyncio.get_running_loop().run_in_executor(
                validator, check_body, body, settings.max_items, svc.genres
            )
        rows = list(zip(*(valid.columns[name] for name in MOVIE_FIELDS), strict=True))
        scored = await svc.batcher.submit(rows)
        metrics.predictions.inc(len(scored))
        out = [p.model_dump() for p in scored]
        return JSONResponse(out[0] if single else out)

    _register_movie_schema(app)
    return app


def _register_movie_schema(app: FastAPI) -> None:
    """Publish the Movie input schema in the OpenAPI document (the body is parsed by hand),
    with the loaded model's genres as the enum of a genre (once the model is loaded)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        movie = Movie.model_json_schema()
        svc: Service | None = app.state.service
        if svc is not None:
            movie["properties"]["genres"]["items"] = {"type": "string", "enum": sorted(svc.genres)}
        schema.setdefault("components", {}).setdefault("schemas", {})["Movie"] = movie
        if svc is None:  # rebuilt with the genres once the model is loaded
            app.openapi_schema = None
            return schema
        app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
