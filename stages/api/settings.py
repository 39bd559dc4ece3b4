"""Service settings from the environment, and the model reference recorded in dvc.lock."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from stages.core.cli import UserError

log = logging.getLogger(__name__)

TRAIN_STAGE = "train"
MODEL_SUFFIX = ".skops"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class ModelRef:
    """Where the train stage wrote the model and the md5 DVC recorded for it."""

    path: Path
    md5: str


def model_from_lock(lock: Path) -> ModelRef | None:
    """The train stage's model output in dvc.lock (the single source of the default path)."""
    try:
        data = yaml.safe_load(lock.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    stage = (data or {}).get("stages", {}).get(TRAIN_STAGE, {}) if isinstance(data, dict) else {}
    for out in stage.get("outs", []) if isinstance(stage, dict) else []:
        if isinstance(out, dict) and str(out.get("path", "")).endswith(MODEL_SUFFIX):
            return ModelRef(Path(out["path"]), str(out.get("md5", UNKNOWN)))
    return None


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_sha(env: Mapping[str, str], cwd: Path) -> str:
    """GIT_SHA from the environment (set in images), else `git rev-parse HEAD`, else unknown."""
    if env.get("GIT_SHA"):
        return env["GIT_SHA"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else UNKNOWN


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UserError(f"environment: {name}={raw!r} is not an integer; fix or unset it") from None
    if value <= 0:
        raise UserError(f"environment: {name}={raw!r} must be positive; fix or unset it")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from the environment, read once at start-up."""

    model_path: Path
    dvc_lock: Path
    host: str
    port: int
    max_items: int
    max_body_bytes: int
    max_batch: int
    model_threads: int
    git_sha: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """MODEL_PATH, else the train output in DVC_LOCK (default dvc.lock); see README."""
        env = os.environ if env is None else env
        lock = Path(env.get("DVC_LOCK") or "dvc.lock")
        if env.get("MODEL_PATH"):
            model_path = Path(env["MODEL_PATH"])
        else:
            ref = model_from_lock(lock)
            if ref is None:
                raise UserError(
                    f"{lock}: no '{TRAIN_STAGE}' model output found; "
                    "run 'make repro' or set MODEL_PATH"
                )
            model_path = ref.path
        return cls(
            model_path=model_path,
            dvc_lock=lock,
            host=env.get("HOST") or "127.0.0.1",
            port=_int(env, "PORT", 8000),
            max_items=_int(env, "MAX_ITEMS", 1000),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 2_000_000),
            max_batch=_int(env, "MAX_BATCH", 256),
            model_threads=_int(env, "MODEL_THREADS", 1),
            git_sha=git_sha(env, lock.parent.resolve()),
        )
