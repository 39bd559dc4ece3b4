"""Entry-point plumbing shared by every command: logging set-up and user-error handling."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence

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


def run(
    main: Callable[[Sequence[str] | None], int | None],
    argv: Sequence[str] | None = None,
    *,
    push_metrics: bool = True,
) -> int:
    """Run a command's main(); a UserError becomes one line on stderr and exit code 2.

    With PUSHGATEWAY_URL set, the outcome is pushed to a Prometheus Pushgateway.
    """
    setup_logging()
    start = time.monotonic()
    code = 1
    try:
        code = main(argv) or 0
        return code
    except UserError as exc:
        sys.stderr.write(f"error: {exc}\n")
        code = 2
        return code
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        code = 130
        return code
    finally:
        if push_metrics:
            pushgateway.push_run(command_name(main), time.monotonic() - start, code == 0)
