"""Entry-point plumbing shared by every command: logging set-up and user-error handling."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

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


def run(
    main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None
) -> int:
    """Run a command's main(); a UserError becomes one line on stderr and exit code 2."""
    setup_logging()
    try:
        return main(argv) or 0
    except UserError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
