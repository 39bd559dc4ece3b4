"""Run the benchmarks: `python -m bench [name ...] [--options]` (default: all BENCHMARKS)."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("serve",)  # module bench.<name> with a main(argv) -> int


def main(argv: list[str]) -> int:
    split = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    names, options = argv[:split] or list(BENCHMARKS), argv[split:]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"error: unknown benchmark '{unknown[0]}'; use one of: {', '.join(BENCHMARKS)}")
        return 2
    code = 0
    for name in names:
        code |= importlib.import_module(f"bench.{name}").main(options)
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
