"""Command `serve`: run the prediction API (FastAPI on uvicorn) with the pipeline's model.

Settings come from the environment (see stages/api/settings.py and the README): MODEL_PATH
(default: the train stage's output in dvc.lock), HOST, PORT (8000), MAX_ITEMS, GIT_SHA…
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import pickle
import socket
import sys
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool

import uvicorn

from stages.api.app import create_app
from stages.api.settings import Settings
from stages.core.cli import UserError, run
from stages.model.artifact import Model, load_model_isolated, require_model_file

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


def check_listen(host: str, port: int) -> None:
    """A port that cannot be had is one line and exit 2 before the model loads (uvicorn would
    log its error and exit 1 after it). The port is bound as uvicorn binds it, then freed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        raise UserError(
            f"environment: cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "set another PORT or HOST, or stop what uses it"
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
    require_model_file(settings.model_path, "run 'make repro' (or 'dvc pull') or set MODEL_PATH")
    check_listen(settings.host, settings.port)
    app = create_app(settings, load(settings))
    # the event loop gets the GIL back within 1 ms from a thread validating a large body
    sys.setswitchinterval(SWITCH_INTERVAL)
    # the model and the imports live as long as the process: out of the garbage collector's
    # sight, a large body's thousands of new objects cost full collections less (they hold
    # the GIL, so /healthz waits for them)
    gc.freeze()
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
