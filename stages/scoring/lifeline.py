"""Worker processes die with their parent: imported first by the batch command, so that a
spawned worker asks the kernel for SIGKILL on its parent's death before its slow imports
(a parent killed while a worker imports would otherwise leave it running)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from multiprocessing import process

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def set_parent_death_signal() -> None:
    """SIGKILL this process when its parent dies (Linux; a no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def in_spawned_worker() -> bool:
    """This process is a multiprocessing child importing the parent's main module (spawn
    marks the process as inheriting meanwhile; sys.argv is already the parent's)."""
    return bool(getattr(process.current_process(), "_inheriting", False))


if in_spawned_worker():
    set_parent_death_signal()
    if os.getppid() == 1:  # the parent died before the signal was set
        os._exit(1)
