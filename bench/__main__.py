"""Run every benchmark: `python -m bench [--full]` (quick sizes unless --full)."""

from __future__ import annotations

import sys

from bench import collect_tmdb

BENCHMARKS = {"collect_tmdb": collect_tmdb.main}


def main(argv: list[str]) -> int:
    full = "--full" in argv
    names = [a for a in argv if not a.startswith("-")] or list(BENCHMARKS)
    for name in names:
        print(f"== {name}")
        rc = BENCHMARKS[name]([] if full else ["--quick"])
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
