"""The champion (the base revision's model, read through DVC) against the challenger (the model
the retrain just built), both scored on the new snapshot's test films."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from stages.compare.paired import SameRows, compare_same_rows
from stages.compare.readers import RevReader
from stages.compare.snapshot import LOCK, MODEL
from stages.core.cli import UserError
from stages.model.artifact import Model, load_model
from stages.model.fit import single_thread


def lock_md5(lock_text: str | None, path: str) -> str | None:
    """The md5 dvc.lock records for the output `path` of any stage; None if it has none."""
    if lock_text is None:
        return None
    try:
        lock: Any = yaml.safe_load(lock_text)
    except yaml.YAMLError:
        return None
    stages = lock.get("stages") if isinstance(lock, dict) else None
    for stage in (stages or {}).values():
        for out in stage.get("outs", []) if isinstance(stage, dict) else []:
            if isinstance(out, dict) and out.get("path") == path and out.get("md5"):
                return str(out["md5"])
    return None


def base_model(reader: RevReader, label: str, path: str = MODEL) -> Model:
    """The base revision's model through DVC (local cache, else the remote), loaded with the
    current code; each way this can fail is a one-line UserError saying what to do."""
    if lock_md5(reader.read(LOCK), path) is None:
        raise UserError(
            f"base {label} has no model: {path} is not in its {LOCK}; "
            "reproduce and push it there first (`dvc repro`, `dvc push`)"
        )
    from dvc.exceptions import DvcException

    with tempfile.TemporaryDirectory(prefix="retrain-base-") as tmp:
        local = Path(tmp) / Path(path).name
        try:
            reader.copy(path, local)
        except (OSError, DvcException) as exc:
            raise UserError(
                f"base {label}: DVC cannot fetch {path} ({type(exc).__name__}) from the local "
                "cache or the remote; run `dvc push` where it was built"
            ) from None
        try:
            return load_model(local)
        except UserError as exc:
            why = str(exc).removeprefix(f"{local}: ").split(";")[0]
            raise UserError(
                f"base {label}: {path} is not loadable by the current code ({why}); "
                "it must be rebuilt: `dvc repro` on the base with this code, then `dvc push`"
            ) from None


def probabilities(model: Model, test: pd.DataFrame) -> Any:
    """P(success) of every test film, on one thread (as evaluate scores)."""
    with single_thread():
        return model.success_probability(model.encode(test))


def champion_vs_challenger(
    champion: Model, challenger: Model, test: pd.DataFrame, rounds: int, seed: int, label: str
) -> SameRows:
    """Both models on the same test films: their metrics and the paired intervals."""
    try:
        base = probabilities(champion, test)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise UserError(
            f"base {label}: its model cannot score the new test films ({type(exc).__name__}: "
            f"{exc}); it must be rebuilt: `dvc repro` on the base with this code, then `dvc push`"
        ) from None
    head = probabilities(challenger, test)
    return compare_same_rows(test["success"].to_numpy(), base, head, rounds, seed)
