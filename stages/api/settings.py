"""Service settings from the environment, and the model reference recorded in dvc.lock."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class Env:
    """Where a setting comes from and its range: declared once, next to the field."""

    name: str
    default: int
    low: int
    high: int


def env(name: str, default: int, low: int, high: int) -> Any:
    return field(metadata={"env": Env(name, default, low, high)})


def _int(values: Mapping[str, str], spec: Env) -> int:
    raw = values.get(spec.name, "").strip()
    if not raw:
        return spec.default
    try:
        value = int(raw) if len(raw) <= 20 else None
    except ValueError:
        value = None
    if value is None:
        raise UserError(f"environment: {spec.name}={raw[:40]!r} is not an integer; fix or unset it")
    if not spec.low <= value <= spec.high:
        raise UserError(
            f"environment: {spec.name}={raw!r} is out of range; use {spec.low}..{spec.high} "
            "or unset it"
        )
    return value


_HOST_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})")


def _host(values: Mapping[str, str]) -> str:
    raw = values.get("HOST", "").strip()
    if not raw:
        return "127.0.0.1"
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        pass
    if not _HOST_RE.fullmatch(raw):
        raise UserError(
            f"environment: HOST={raw[:80]!r} is not an IP address or host name; fix or unset it"
        )
    return raw


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from the environment, read once at start-up; each
    numeric setting declares its variable, default and range once, here."""

    model_path: Path
    dvc_lock: Path
    host: str
    port: int = env("PORT", 8000, 1, 65535)
    max_items: int = env("MAX_ITEMS", 1000, 1, 100_000)
    max_body_bytes: int = env("MAX_BODY_BYTES", 2_000_000, 1024, 1 << 30)
    max_batch: int = env("MAX_BATCH", 256, 1, 100_000)
    model_threads: int = env("MODEL_THREADS", 1, 1, 256)
    # 1: small batches on the verified tree evaluator (stages.model.trees); 0: public path only
    fast_path: int = env("FAST_PATH", 1, 0, 1)
    git_sha: str = UNKNOWN

    @classmethod
    def from_env(cls, values: Mapping[str, str] | None = None) -> Settings:
        """MODEL_PATH, else the train output in DVC_LOCK (default dvc.lock); see README."""
        values = os.environ if values is None else values
        lock = Path(values.get("DVC_LOCK") or "dvc.lock")
        if values.get("MODEL_PATH"):
            model_path = Path(values["MODEL_PATH"])
        else:
            ref = model_from_lock(lock)
            if ref is None:
                raise UserError(
                    f"{lock}: no '{TRAIN_STAGE}' model output found; "
                    "run 'make repro' or set MODEL_PATH"
                )
            model_path = ref.path
        numbers = {
            f.name: _int(values, f.metadata["env"]) for f in fields(cls) if "env" in f.metadata
        }
        return cls(
            model_path=model_path,
            dvc_lock=lock,
            host=_host(values),
            git_sha=git_sha(values, lock.parent.resolve()),
            **numbers,
        )
