"""The `train:` section of params.yaml: the model's hyperparameters and feature settings.

Each range is declared here, once, and checked when params.yaml is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

MAX_TOP_K_CATEGORIES = 1000  # one-hot columns per categorical field; more is a typo
MAX_SEED = 2**32 - 1  # numpy's and sklearn's random_state range


@dataclass(frozen=True)
class TrainParams:
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)]
    learning_rate: Annotated[float, Field(gt=0)]
    max_iter: Annotated[int, Field(ge=1)]
    max_leaf_nodes: Annotated[int, Field(ge=2)]
    min_samples_leaf: Annotated[int, Field(ge=1)]
    l2_regularization: Annotated[float, Field(ge=0)]
    top_k_categories: Annotated[int, Field(ge=1, le=MAX_TOP_K_CATEGORIES)]
    min_category_count: Annotated[int, Field(ge=1)]
    # pseudo-films shrinking a director's/company's prior mean log-ROI
    prior_strength: Annotated[float, Field(ge=0)]
    budget_years: Annotated[int, Field(ge=1)]  # trailing window for the median budget
    # last train years predicted out of time to choose the threshold
    threshold_years: Annotated[int, Field(ge=1)]
