"""What a test needs from outside the repository: skip where it is absent, fail under CI.

`REQUIRE_TOOLS=1` (set in CI, where every tool and ../shared are provided) turns each skip
into a failure, so a missing prerequisite cannot silently hollow out the suite.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.support import ROOT

# Real TMDB films (../shared/data/README.md); never copied into the repository.
TMDB_DEV = ROOT.parent / "shared" / "data" / "tmdb-dev.jsonl.gz"


def need(ok: bool, reason: str) -> None:
    """Skip with `reason` unless `ok`; fail instead when REQUIRE_TOOLS=1."""
    import pytest

    if ok:
        return
    if os.environ.get("REQUIRE_TOOLS") == "1":
        pytest.fail(f"{reason} (REQUIRE_TOOLS=1)")
    pytest.skip(reason)


def tmdb_dev() -> Path:
    """The real-films file beside the repository, or skip (fail under REQUIRE_TOOLS=1)."""
    need(
        TMDB_DEV.is_file(),
        f"{TMDB_DEV} is absent: the real TMDB films live in ../shared/data beside the "
        "repository (CI copies shared/ there)",
    )
    return TMDB_DEV
