"""Entry-point plumbing shared by every command: logging set-up and user-error handling."""

from __future__ import annotations

import csv
import errno
import gzip
import json
import logging
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from stages.core import pushgateway

log = logging.getLogger(__name__)


class UserError(Exception):
    """An error the user can fix; printed as one line, without a traceback."""


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def command_name(main: Callable[..., object]) -> str:
    """'train' for stages/train.py, also when it runs as `python -m stages.train`."""
    name = main.__module__
    if name == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        name = spec.name if spec is not None else name
    return name.rpartition(".")[2]


_OS_HINTS = {
    errno.ENOENT: "check the path (earlier stages: dvc repro)",
    errno.EACCES: "check its permissions",
    errno.EPERM: "check its permissions",
    errno.EISDIR: "it is a directory; pass a file",
    errno.ENOTDIR: "a part of the path is a file, not a directory; fix the path",
    errno.ENOSPC: "the disk is full; free space and rerun",
    errno.EDQUOT: "the disk quota is exceeded; free space and rerun",
    errno.EROFS: "the filesystem is read-only; write elsewhere",
    errno.ENAMETOOLONG: "the name is too long; shorten the path",
}


def read_input(path: Path, what: str, missing: str) -> bytes:
    """The bytes of an input file; the usual reasons it cannot be read are one line naming
    it, `what` it should be, and the fix (`missing`: what to do when it does not exist)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: {missing}") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not {what}; pass the file") from None
    except PermissionError:
        raise UserError(f"{path}: permission denied; make it readable") from None


def expected_error(exc: BaseException) -> str | None:
    """The one line for an expected failure class that reached run() untranslated (the
    stage's own translation, which knows the file, is better), or None for a genuine bug.

    Expected: file-system errors, decode errors (UTF-8, JSON, gzip/zlib, Parquet/Arrow,
    CSV) and library validation errors (pydantic)."""
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"input is not valid {exc.encoding} at byte offset {exc.start} ({exc.reason}); "
            "save it as UTF-8"
        )
    if isinstance(exc, json.JSONDecodeError):
        return (
            f"not valid JSON at line {exc.lineno}, column {exc.colno} (byte offset {exc.pos}): "
            f"{exc.msg}; fix or regenerate the file"
        )
    if isinstance(exc, gzip.BadGzipFile | zlib.error | EOFError):
        return f"a compressed input is damaged ({exc or type(exc).__name__}); restore it"
    if isinstance(exc, OSError):
        path = f"{exc.filename}: " if exc.filename is not None else ""
        why = exc.strerror or str(exc) or type(exc).__name__
        hint = _OS_HINTS.get(exc.errno or 0, "check the path and rerun")
        return f"{path}{why}; {hint}"
    if isinstance(exc, csv.Error):
        return f"malformed CSV ({exc}); fix the file"
    name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    if name.startswith("pyarrow.") and isinstance(exc, ValueError | OSError):
        return f"not a readable Parquet/Arrow file ({str(exc).splitlines()[0]}); regenerate it"
    if name.startswith("orjson.") and isinstance(exc, ValueError):
        return f"not valid JSON ({exc}); fix or regenerate the file"
    if name == "pydantic_core._pydantic_core.ValidationError":
        err = exc.errors(include_url=False)[0]  # type: ignore[attr-defined]
        key = ".".join(str(p) for p in err["loc"])
        return f"key '{key}' {err['msg']}; fix it"
    return None


def run(
    main: Callable[[Sequence[str] | None], int | None],
    argv: Sequence[str] | None = None,
    *,
    push_metrics: bool = True,
) -> int:
    """Run a command's main(): the one error boundary of every entry point.

    A UserError, or an expected failure class (see expected_error), becomes one line on
    stderr and exit code 2, no traceback; anything else is a bug and keeps its traceback
    (exit 1).

    With PUSHGATEWAY_URL set, the outcome is pushed to a Prometheus Pushgateway.
    """
    setup_logging()
    start = time.monotonic()
    code = 1
    try:
        code = main(argv) or 0
        return code
    except UserError as exc:
        sys.stderr.write(f"error: {' '.join(str(exc).splitlines())}\n")
        code = 2
        return code
    except Exception as exc:
        line = expected_error(exc)
        if line is None:
            raise  # a genuine bug: exit 1 with its traceback
        sys.stderr.write(f"error: {' '.join(line.splitlines())}\n")
        code = 2
        return code
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        code = 130
        return code
    finally:
        if push_metrics:
            pushgateway.push_run(command_name(main), time.monotonic() - start, code == 0)
