"""Model fitting shared by train and backtest: the two heads, the baselines, out-of-time
predictions, the decision threshold and the leakage guard.

Everything here is judged the way it will be used: a model fitted on films released before
year Y predicts the films of year Y.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from stages.core.cli import UserError
from stages.core.schema import POST_RELEASE
from stages.model import portable
from stages.model.baselines import BudgetLinear, BudgetLogistic
from stages.model.features import MovieFeatures

log = logging.getLogger(__name__)

MAX_LABEL_CORRELATION = 0.9


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
    use_runtime: bool  # runtime's presence in the sample is a post-release artefact
    threshold_years: int  # last train years predicted out of time to choose the threshold


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """One OpenMP thread: on a busy 2-core runner, spinning threads make boosting 10x slower."""
    with threadpool_limits(limits=1):
        yield


def features(params: TrainParams) -> MovieFeatures:
    return MovieFeatures(
        top_k=params.top_k_categories,
        min_count=params.min_category_count,
        prior_strength=params.prior_strength,
        budget_years=params.budget_years,
        use_runtime=params.use_runtime,
    )


def head(params: TrainParams, task: str = "classify") -> BaseEstimator:
    """Gradient boosting; `classify` predicts success, `regress` log1p(revenue)."""
    estimator = (
        HistGradientBoostingClassifier if task == "classify" else HistGradientBoostingRegressor
    )
    return estimator(
        learning_rate=params.learning_rate,
        max_iter=params.max_iter,
        max_leaf_nodes=params.max_leaf_nodes,
        min_samples_leaf=params.min_samples_leaf,
        l2_regularization=params.l2_regularization,
        categorical_features="from_dtype",
        early_stopping=False,
        random_state=params.seed,
    )


def build_pipeline(params: TrainParams, task: str = "classify") -> Pipeline:
    """Features + gradient boosting; `classify` predicts success, `regress` log1p(revenue)."""
    return Pipeline([("features", features(params)), ("model", head(params, task))])


def fit_heads(
    df: pd.DataFrame, y: np.ndarray, params: TrainParams, y_revenue: np.ndarray | None
) -> tuple[Pipeline, Pipeline]:
    """Both heads on ONE fitted feature step (its fit does not read the labels): the same
    object sits in both pipelines, so the artefact stores it once and scoring transforms once.
    Identical to fitting each Pipeline on its own. Without `y_revenue` the regressor is
    returned unfitted."""
    feats = features(params).fit(df)
    Xt = feats.transform(df)
    clf = Pipeline([("features", feats), ("model", head(params).fit(Xt, y))])
    reg_head = head(params, "regress")
    if y_revenue is not None:
        reg_head.fit(Xt, y_revenue)
    return clf, Pipeline([("features", feats), ("model", reg_head)])


def log_revenue(df: pd.DataFrame) -> np.ndarray:
    """The regression target, log(1 + revenue), with the same bits on every CPU."""
    return portable.log1p(df["revenue"].to_numpy(float))


def label_correlations(frame: pd.DataFrame, y: np.ndarray) -> dict[str, float]:
    """|Pearson correlation| of each numeric feature with the label (missing values dropped)."""
    out = {}
    for name in frame.columns:
        col = frame[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            continue
        x = col.to_numpy(float)
        ok = np.isfinite(x)
        if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
            continue
        out[name] = abs(float(np.corrcoef(x[ok], y[ok])[0, 1]))
    return out


def check_leakage(pipeline: Pipeline, df: pd.DataFrame, y: np.ndarray) -> None:
    """Refuse a fitted model whose features include a post-release field or a near-copy of
    the label (|correlation| > MAX_LABEL_CORRELATION on the training set)."""
    feats: MovieFeatures = pipeline.named_steps["features"]
    names = set(feats.get_feature_names_out())
    post = sorted(names & POST_RELEASE)
    if post:
        raise UserError(f"train: post-release field '{post[0]}' is a feature; remove it")
    corr = label_correlations(feats.transform(df), y)
    leaky = sorted((c, n) for n, c in corr.items() if c > MAX_LABEL_CORRELATION)
    if leaky:
        c, n = leaky[-1]
        raise UserError(
            f"train: feature '{n}' has |correlation| {c:.3f} with the label on the training "
            f"set (> {MAX_LABEL_CORRELATION}); it leaks the outcome, remove it"
        )


def choose_threshold(y: np.ndarray, proba: np.ndarray) -> float:
    """The probability cut that maximises F1 on out-of-time predictions (never test data).

    Candidates are the midpoints between distinct predictions; ties go to the higher cut.
    """
    values = np.unique(proba)
    if len(values) < 2 or y.sum() == 0:
        return 0.5
    cuts = (values[:-1] + values[1:]) / 2
    order = np.argsort(-proba, kind="stable")
    p_sorted, y_sorted = proba[order], y[order]
    tp = np.cumsum(y_sorted)
    # predicted positives at cut c: all with proba >= c
    n_pos = np.searchsorted(-p_sorted, -cuts, side="right")
    tp_at = np.where(n_pos > 0, tp[np.maximum(n_pos - 1, 0)], 0)
    f1 = 2 * tp_at / (n_pos + y.sum())
    best = np.flatnonzero(f1 == f1.max())[-1]
    return float(cuts[best])


def year_of(df: pd.DataFrame) -> np.ndarray:
    return pd.to_datetime(df["release_date"]).dt.year.to_numpy()


@dataclass(frozen=True)
class Fitted:
    classifier: Pipeline
    regressor: Pipeline
    logreg_budget: BudgetLogistic
    linear_budget: BudgetLinear
    majority: DummyClassifier


def fit_all(df: pd.DataFrame, params: TrainParams, regress: bool = True) -> Fitted:
    """Fit both heads and the baselines on `df` (films released before the period to predict)."""
    y = df["success"].to_numpy()
    if len(np.unique(y)) < 2:
        raise UserError("train: the train split has a single class; widen the data range")
    clf, reg = fit_heads(df, y, params, log_revenue(df) if regress else None)
    check_leakage(clf, df, y)
    lin = BudgetLinear()
    if regress:
        lin.fit(df, log_revenue(df))
    return Fitted(
        classifier=clf,
        regressor=reg,
        logreg_budget=BudgetLogistic().fit(df, y),
        linear_budget=lin,
        majority=DummyClassifier(strategy="prior").fit(df[["budget"]], y),
    )


def predict_all(fitted: Fitted, df: pd.DataFrame, regress: bool = True) -> pd.DataFrame:
    """Per-film predictions of the model and the baselines."""
    out = pd.DataFrame(
        {
            "year": year_of(df),
            "success": df["success"].to_numpy(),
            "proba": fitted.classifier.predict_proba(df)[:, 1],
            "proba_logreg_budget": fitted.logreg_budget.predict_proba(df)[:, 1],
            "proba_majority": fitted.majority.predict_proba(df[["budget"]])[:, 1],
        }
    )
    if regress:
        out["log_revenue"] = log_revenue(df)
        out["pred_log_revenue"] = fitted.regressor.predict(df)
        out["pred_log_revenue_linear_budget"] = fitted.linear_budget.predict(df)
    return out


def expanding_window(
    df: pd.DataFrame, years: Sequence[int], params: TrainParams, regress: bool = True
) -> pd.DataFrame:
    """For each year Y: fit on films released before Y, predict the films of Y."""
    year = year_of(df)
    parts = []
    for y in years:
        past, now = df[year < y], df[year == y]
        if now.empty or past["success"].nunique() < 2:
            continue
        parts.append(predict_all(fit_all(past, params, regress), now, regress))
        log.info("expanding window: year %s, %s train rows, %s test rows", y, len(past), len(now))
    if not parts:
        raise UserError("expanding window: no year has both earlier films and films to predict")
    return pd.concat(parts, ignore_index=True)


def thresholds_from(oot: pd.DataFrame) -> dict[str, float]:
    """Thresholds for the model and the budget baseline from out-of-time predictions.

    The majority baseline keeps 0.5, which makes its prediction the majority class.
    """
    y = oot["success"].to_numpy()
    return {
        "model": choose_threshold(y, oot["proba"].to_numpy()),
        "logreg_budget": choose_threshold(y, oot["proba_logreg_budget"].to_numpy()),
        "majority": 0.5,
    }


def threshold_years(df: pd.DataFrame, params: TrainParams) -> list[int]:
    """The last `threshold_years` calendar years of `df` (each predicted from earlier years)."""
    years = sorted(set(year_of(df).tolist()))
    k = params.threshold_years
    return years[-k:] if 0 < k < len(years) else []


def train(df: pd.DataFrame, params: TrainParams) -> dict[str, Any]:
    """Fit on the train split; return the artefact that evaluate, backtest and predict load."""
    if df["success"].nunique() < 2:
        raise UserError("train: the train split has a single class; widen the data range")
    years = threshold_years(df, params)
    if years:
        oot = expanding_window(df, years, params, regress=False)
        thresholds = thresholds_from(oot)
    else:
        thresholds = {"model": 0.5, "logreg_budget": 0.5, "majority": 0.5}
    fitted = fit_all(df, params)
    return {
        "classifier": fitted.classifier,
        "regressor": fitted.regressor,
        "threshold": thresholds["model"],
        "params": asdict(params),
        "train_rows": len(df),
        "threshold_years": years,
        "baselines": {
            "majority": fitted.majority,
            "majority_threshold": thresholds["majority"],
            "logreg_budget": fitted.logreg_budget,
            "logreg_budget_threshold": thresholds["logreg_budget"],
            "linear_budget": fitted.linear_budget,
        },
    }
