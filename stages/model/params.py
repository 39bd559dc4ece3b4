"""The `train:` section of params.yaml: the model's hyperparameters and feature settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainParams:
    seed: int
    learning_rate: float
    max_iter: int
    max_leaf_nodes: int
    min_samples_leaf: int
    l2_regularization: float
    top_k_categories: int
    min_category_count: int
    prior_strength: float  # pseudo-films shrinking a director's/company's prior mean log-ROI
    budget_years: int  # trailing window for the median budget
    threshold_years: int  # last train years predicted out of time to choose the threshold
