"""Atomic, deterministic writers: a killed run never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd

STALE_TEMP_S = 3600.0  # an atomic_path temp file older than this is a killed run's


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temps(path: Path) -> None:
    """Remove `path`'s temp files a killed run left (older than STALE_TEMP_S, so a
    concurrent writer of the same output is not disturbed)."""
    now = time.time()
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > STALE_TEMP_S:
                tmp.unlink()


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; outputs are ordinary files
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: Path | str, mode: str = "w") -> Iterator[IO[Any]]:
    with atomic_path(path) as tmp:
        encoding = None if "b" in mode else "utf-8"
        newline = None if "b" in mode else "\n"
        with open(tmp, mode, encoding=encoding, newline=newline) as fh:
            yield fh


def dumps_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(path: Path | str, data: Any) -> None:
    with atomic_open(path) as fh:
        fh.write(dumps_json(data))


def write_text(path: Path | str, text: str) -> None:
    with atomic_open(path) as fh:
        fh.write(text)


def write_parquet(path: Path | str, df: pd.DataFrame) -> None:
    # No index and a fixed writer: same frame, same bytes.
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")


def write_csv(path: Path | str, df: pd.DataFrame) -> None:
    with atomic_open(path) as fh:
        df.to_csv(fh, index=False, lineterminator="\n")


# Temp names: `.<name>.<random>.tmp` files (atomic_path) and `.staging-<pid>-<random>`
# directories (staged_outputs), always beside the output. A run removes the stale ones a
# killed run (SIGKILL) left, `make clean` too.
STAGING_PREFIX = ".staging-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(folder: Path) -> None:
    """Remove staging directories in `folder` whose process is gone (a killed run's)."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if not entry.name.startswith(STAGING_PREFIX):
            continue
        pid = entry.name[len(STAGING_PREFIX) :].partition("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def staged_outputs(*paths: Path | str) -> Iterator[tuple[Path, ...]]:
    """All of a stage's outputs or none: yield one temporary path per output (files or
    folders), in a staging directory beside it on the same filesystem; when the block
    succeeds, every one is moved into place (a replaced folder is swapped whole), else the
    staging directories are removed and the previous outputs stay byte-identical.

    Every output must have been written by the block (a missing one is a programming error).
    """
    outs = [Path(p) for p in paths]
    if len({p.resolve() for p in outs}) != len(outs):
        raise ValueError(f"the same output is given twice: {[str(p) for p in outs]}")
    staging: dict[Path, Path] = {}
    created: list[Path] = []  # folders made for the outputs, deepest first
    done = False
    try:
        for out in outs:
            parent = out.parent
            if parent not in staging:
                if parent.exists() and not parent.is_dir():
                    raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(parent))
                created += [d for d in (parent, *parent.parents) if not d.exists()]
                parent.mkdir(parents=True, exist_ok=True)
                remove_stale(parent)
                staging[parent] = Path(
                    tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=parent)
                )
                os.chmod(staging[parent], 0o777 & ~_umask())
        temps = tuple(staging[out.parent] / out.name for out in outs)
        yield temps
        missing = [str(out) for out, tmp in zip(outs, temps, strict=True) if not tmp.exists()]
        if missing:
            raise RuntimeError(f"staged_outputs: the stage did not write {missing}")
        for out, tmp in zip(outs, temps, strict=True):
            if tmp.is_dir() and out.exists():
                old = staging[out.parent] / f".old.{out.name}"
                os.replace(out, old)  # a folder cannot be replaced by rename: swap it
            os.replace(tmp, out)
        done = True
    finally:
        for folder in staging.values():
            shutil.rmtree(folder, ignore_errors=True)
        if not done:  # a failed stage leaves no empty output folder either
            for folder in created:
                with contextlib.suppress(OSError):
                    folder.rmdir()


def parquet_frame(
    path: Path | str, what: str = "run the earlier stages first (dvc repro)"
) -> pd.DataFrame:
    """pd.read_parquet with the path in a one-line UserError for a missing or damaged file."""
    from stages.core.cli import UserError

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: not found; {what}")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a Parquet file; pass the file")
    try:
        return pd.read_parquet(path)
    except PermissionError:
        raise UserError(f"{path}: permission denied; make it readable") from None
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path}: not a readable Parquet file ({detail}); {what}") from None
