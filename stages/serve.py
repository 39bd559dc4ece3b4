"""Command `serve`: run the prediction API (FastAPI on uvicorn) with the pipeline's model.

Settings come from the environment (see stages/api/settings.py and the README): MODEL_PATH
(default: the train stage's output in dvc.lock), HOST, PORT (8000), MAX_ITEMS, GIT_SHA…
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import sys
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool

import uvicorn

from stages.api.app import create_app
from stages.api.settings import Settings
from stages.core.cli import UserError, run
from stages.model.artifact import Model, load_model_isolated

log = logging.getLogger(__name__)

SWITCH_INTERVAL = 0.001  # seconds (Python's default: 0.005)


def load(settings: Settings) -> Model:
    """The model, loaded before the server starts: a refused file is one line and exit 2
    (in uvicorn's lifespan it would be a traceback and exit 3)."""
    try:
        return load_model_isolated(settings.model_path)
    except UserError:
        raise
    except (OSError, EOFError, BrokenProcessPool, pickle.UnpicklingError, MemoryError) as exc:
        raise UserError(
            f"{settings.model_path}: the model could not be loaded ({type(exc).__name__}: "
            f"{exc}); rebuild it ('make repro') or set MODEL_PATH"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", help="overrides HOST")
    parser.add_argument("--port", type=int, help="overrides PORT")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if args.host:
        env["HOST"] = args.host
    if args.port is not None:
        env["PORT"] = str(args.port)
    settings = Settings.from_env(env)
    if not settings.model_path.is_file():
        raise UserError(
            f"{settings.model_path}: model not found; run 'make repro' (or 'dvc pull') "
            "or set MODEL_PATH"
        )
    app = create_app(settings, load(settings))
    # the event loop gets the GIL back within 1 ms from a thread validating a large body
    sys.setswitchinterval(SWITCH_INTERVAL)
    # One process, one event loop: the model runs in one worker thread fed by the batcher.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, push_metrics=False))
