"""The `collect:` section of params.yaml, declared once for the command and the sources."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class CollectParams:
    """What to collect and how hard to press TMDB; the sample source reads only `source`."""

    source: Literal["sample", "tmdb"]
    release_date_gte: dt.date
    release_date_lte: dt.date
    rate_limit: float
    concurrency: int
    max_retries: int
    timeout_s: float
    include_adult: bool
    languages: tuple[str, ...]
    regions: tuple[str, ...]
