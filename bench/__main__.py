"""Run the benchmarks: `python -m bench [name ...] [--options]`; no name runs every module.

Each module bench/<name>.py (not starting with "_") has `main(argv) -> int`; options after
the names are passed to each.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    here = str(Path(__file__).parent)
    return sorted(m.name for m in pkgutil.iter_modules([here]) if not m.name.startswith("_"))


def main(argv: list[str]) -> int:
    split = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    names, options = argv[:split] or available(), argv[split:]
    unknown = [n for n in names if n not in available()]
    if unknown:
        sys.stderr.write(f"error: unknown benchmark '{unknown[0]}'; use one of: {available()}\n")
        return 2
    status = 0
    for name in names:
        sys.stdout.write(f"== bench.{name}\n")
        sys.stdout.flush()
        status |= importlib.import_module(f"bench.{name}").main(options) or 0
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
