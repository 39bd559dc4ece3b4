"""The collect output: one normalized record per line, written atomically.

Every source ends here, so a killed run never leaves half a file and the same records
always give the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stages.core.io import atomic_open


def write_lines(path: Path, lines: Iterable[str]) -> int:
    """Write already serialized records, one a line, streamed; return how many."""
    n = 0
    with atomic_open(path) as fh:
        for line in lines:
            fh.write(line + "\n")
            n += 1
    return n


def write_records(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records sorted by id (keys sorted too), so the bytes depend only on the records."""
    lines = (
        json.dumps(rec, sort_keys=True, ensure_ascii=False)
        for rec in sorted(records, key=lambda r: r["id"])
    )
    return write_lines(path, lines)
