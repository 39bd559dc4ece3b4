"""The `collect:` section of params.yaml, declared once for the command and the sources.

Each range is declared beside its field and checked when params.yaml is loaded.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

from stages.core.params import ParamError


@dataclass(frozen=True)
class CollectParams:
    """What to collect and how hard to press TMDB; the sample source reads only `source`."""

    source: Literal["sample", "tmdb"]
    release_date_gte: dt.date
    release_date_lte: dt.date  # on or after release_date_gte
    rate_limit: Annotated[float, Field(gt=0)]  # requests per second
    concurrency: Annotated[int, Field(ge=1)]
    max_retries: Annotated[int, Field(ge=0)]
    timeout_s: Annotated[float, Field(gt=0)]
    include_adult: bool
    languages: tuple[str, ...]
    regions: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.release_date_gte > self.release_date_lte:
            raise ParamError(
                "release_date_gte",
                f"must be on or before release_date_lte ({self.release_date_lte}), "
                f"got {self.release_date_gte}",
            )
