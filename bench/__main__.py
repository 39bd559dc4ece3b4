"""Run every benchmark module in bench/ (or those named on the command line) in turn."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    names = argv or sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if not m.name.startswith("_")
    )
    status = 0
    for name in names:
        print(f"== bench.{name}", flush=True)
        status |= importlib.import_module(f"bench.{name}").main() or 0
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
