"""The batch command's output files: checked before any work, written all or nothing.

Both files are built as anonymous files (Linux O_TMPFILE: the kernel frees them if the
process dies, even by SIGKILL) and only given their names once the run has succeeded; a
previous output stays byte-identical otherwise. Where O_TMPFILE is not available the
temporary files are named `.NAME.predict-tmp-PID` beside the output (TEMP_GLOB), and every
run (and `make clean`) removes those whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from stages.core.cli import UserError

TEMP_MARK = ".predict-tmp-"
TEMP_GLOB = f".*{TEMP_MARK}*"  # what `make clean` removes


def _same(a: Path, b: Path) -> bool:
    """The same file, also through a symlink or a hard link."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_paths(source: Path, outputs: Sequence[tuple[str, Path]]) -> None:
    """One line for an output that would overwrite the input or another output, or whose
    directory cannot hold it (a file on the way, no permission)."""
    seen: list[tuple[str, Path]] = [("--input", source)]
    for flag, path in outputs:
        for other_flag, other in seen:
            if _same(path, other):
                raise UserError(
                    f"{flag} {path} is the same file as {other_flag} {other}; "
                    "choose another output path"
                )
        seen.append((flag, path))
        if path.is_dir():
            raise UserError(f"{flag} {path} is a directory; pass a file path")
        parent = path.parent
        for up in (parent, *parent.parents):
            if up.exists():
                if not up.is_dir():
                    raise UserError(
                        f"{flag} {path}: {up} is a file, not a directory; choose another path"
                    )
                if up == parent and not os.access(parent, os.W_OK | os.X_OK):
                    raise UserError(
                        f"{flag} {path}: directory {parent} is not writable; "
                        "choose another path or fix its permissions"
                    )
                break


def remove_stale(path: Path) -> None:
    """Remove the named temporary files a killed run left beside `path`."""
    with contextlib.suppress(OSError):
        for stale in path.parent.glob(f".{path.name}{TEMP_MARK}*"):
            pid = stale.name.rpartition(TEMP_MARK)[2]
            if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
                continue
            stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


class Pending:
    """An output being written: an anonymous file (or a named temporary one) in the output's
    directory, given the output's name by commit()."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temp = path.parent / f".{path.name}{TEMP_MARK}{os.getpid()}"
        self.named = False
        mode = 0o666  # as an ordinary file: the umask applies
        try:
            fd = os.open(path.parent, os.O_TMPFILE | os.O_WRONLY, mode)
        except (AttributeError, OSError):  # not Linux, or a file system without O_TMPFILE
            fd = os.open(self.temp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, mode)
            self.named = True
        self.file: IO[str] = os.fdopen(fd, "w", encoding="utf-8", newline="\n")

    def stage(self) -> None:
        """Flush to disk and give the file its temporary name (for the anonymous one)."""
        self.file.flush()
        os.fsync(self.file.fileno())
        if not self.named:
            self.temp.unlink(missing_ok=True)
            # linkat(AT_SYMLINK_FOLLOW) on the fd's /proc link: how O_TMPFILE gets a name
            fds = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.link(str(self.file.fileno()), self.temp, src_dir_fd=fds, follow_symlinks=True)
            finally:
                os.close(fds)
            self.named = True
        self.file.close()

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        if self.named:
            self.temp.unlink(missing_ok=True)


@contextlib.contextmanager
def all_or_nothing(paths: Sequence[Path]) -> Iterator[list[IO[str]]]:
    """Files to write `paths` with, moved into place together only if the block succeeds:
    an error (or a kill) leaves every previous output as it was and no temporary file."""
    for path in paths:
        remove_stale(path)
    pending: list[Pending] = []
    try:
        try:
            for path in paths:
                path.parent.mkdir(parents=True, exist_ok=True)
                pending.append(Pending(path))
        except OSError as exc:
            raise UserError(
                f"{path}: cannot create the output ({exc.strerror or exc}); "
                "choose another path or fix its permissions"
            ) from None
        try:
            yield [p.file for p in pending]
        except OSError as exc:
            where = exc.filename or ", ".join(map(str, paths))
            raise UserError(
                f"{where}: {exc.strerror or exc}; free space or choose another path"
            ) from None
        try:
            for p in pending:
                p.stage()
            for p in pending:
                os.replace(p.temp, p.path)
        except OSError as exc:
            raise UserError(
                f"{p.path}: cannot write the output ({exc.strerror or exc}); "
                "free space or choose another path"
            ) from None
    finally:
        for p in pending:
            p.discard()
