"""Dispatch: `python -m bench` runs every benchmark module listed here; args pick a subset."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("remote",)


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"error: unknown benchmark {unknown[0]}; choose from {', '.join(BENCHMARKS)}")
        return 2
    for name in names:
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
