"""Model fitting shared by train and backtest: the two heads, the baselines, out-of-time
predictions, the decision threshold and the leakage guard.

Everything here is judged the way it will be used: a model fitted on films released before
year Y predicts the films of year Y.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from stages.core.cli import UserError
from stages.core.schema import POST_RELEASE
from stages.model import portable
from stages.model.artifact import Baselines, Model
from stages.model.baselines import BudgetLinear, BudgetLogistic
from stages.model.features import MovieFeatures
from stages.model.features import known as features_known
from stages.model.params import TrainParams

log = logging.getLogger(__name__)

MAX_LABEL_CORRELATION = 0.9
# TMDB lists that users extend over a film's life: their length tracks fame, not the film.
USER_CONTRIBUTED = ("keywords", "cast", "production_companies")
RECENT_YEARS = 3
MAX_COVERAGE_SHIFT = 0.5


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """One OpenMP thread: on a busy 2-core runner, spinning threads make boosting 10x slower."""
    with threadpool_limits(limits=1):
        yield


def features(params: TrainParams) -> MovieFeatures:
    return MovieFeatures(
        top_k_categories=params.top_k_categories,
        min_category_count=params.min_category_count,
        prior_strength=params.prior_strength,
        budget_years=params.budget_years,
    )


def head(
    params: TrainParams, task: str = "classify"
) -> HistGradientBoostingClassifier | HistGradientBoostingRegressor:
    """Gradient boosting on the feature matrix; `classify` predicts success, `regress`
    log1p(revenue)."""
    estimator = (
        HistGradientBoostingClassifier if task == "classify" else HistGradientBoostingRegressor
    )
    return estimator(
        learning_rate=params.learning_rate,
        max_iter=params.max_iter,
        max_leaf_nodes=params.max_leaf_nodes,
        min_samples_leaf=params.min_samples_leaf,
        l2_regularization=params.l2_regularization,
        early_stopping=False,
        random_state=params.seed,
    )


def log_revenue(df: pd.DataFrame) -> np.ndarray:
    """The regression target, log(1 + revenue), with the same bits on every CPU."""
    return portable.log1p(df["revenue"].to_numpy(float))


def label_correlations(frame: pd.DataFrame, y: np.ndarray) -> dict[str, float]:
    """|Pearson correlation| of each feature with the label (missing values dropped)."""
    out = {}
    for name in frame.columns:
        x = frame[name].to_numpy(float)
        ok = np.isfinite(x)
        if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
            continue
        out[name] = abs(float(np.corrcoef(x[ok], y[ok])[0, 1]))
    return out


def coverage_shifts(known: pd.DataFrame, year: np.ndarray) -> dict[str, float]:
    """|coverage among the last RECENT_YEARS years' films - coverage among earlier films| of
    each input (`known`: where each has a value): metadata that accumulates after release is
    thinner for recent films."""
    recent = year > year.max() - RECENT_YEARS
    if recent.all() or not recent.any():
        return {}
    flags = known.to_numpy(dtype=bool)
    shift = np.abs(flags[recent].mean(axis=0) - flags[~recent].mean(axis=0))
    return dict(zip(known.columns, shift.round(6).tolist(), strict=True))


def leakage_problems(
    frame: pd.DataFrame, y: np.ndarray, year: np.ndarray, known: pd.DataFrame
) -> list[str]:
    """Why a feature matrix would leak the outcome, one message per offending feature (or
    input field, for coverage: `known` says where each input the features read has a value)."""
    problems = [
        f"post-release field '{name}' is a feature; remove it"
        for name in frame.columns
        if name in POST_RELEASE
    ]
    problems += [
        f"feature '{name}' counts user-contributed metadata, which grows with a film's fame "
        "after release; remove it"
        for name in frame.columns
        if name in {f"n_{field}" for field in USER_CONTRIBUTED}
    ]
    problems += [
        f"feature input '{name}' is known for {shift:.0%} more or fewer of the last "
        f"{RECENT_YEARS} years' films than of earlier ones (> {MAX_COVERAGE_SHIFT:.0%}): its "
        "coverage is an artefact of time since release; remove it"
        for name, shift in sorted(coverage_shifts(known, year).items())
        if shift > MAX_COVERAGE_SHIFT
    ]
    corr = label_correlations(frame, y)
    problems += [
        f"feature '{name}' has |correlation| {c:.3f} with the label on the training set "
        f"(> {MAX_LABEL_CORRELATION}); it leaks the outcome, remove it"
        for name, c in sorted(corr.items())
        if c > MAX_LABEL_CORRELATION
    ]
    return problems


def check_leakage(feats: MovieFeatures, df: pd.DataFrame, y: np.ndarray) -> None:
    """Refuse a fitted feature step whose features would leak the outcome (see
    leakage_problems); the first reason is the message."""
    known = pd.DataFrame({name: features_known(df, name) for name in feats.used_fields})
    problems = leakage_problems(feats.frame(df), y, year_of(df), known)
    if problems:
        raise UserError(f"train: {problems[0]}")


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


def fit_model(df: pd.DataFrame, params: TrainParams, regress: bool = True) -> Model:
    """Both heads on one feature step, and the baselines, fitted on `df` (films released
    before the period to predict). Thresholds stay 0.5; `train` chooses them out of time.
    Without `regress` the regression head and line are left unfitted (threshold search)."""
    y = df["success"].to_numpy()
    if len(np.unique(y)) < 2:
        raise UserError("train: the train split has a single class; widen the data range")
    feats = features(params).fit(df, y)
    check_leakage(feats, df, y)
    X = feats.transform(df)
    regressor, linear = head(params, "regress"), BudgetLinear()
    if regress:
        target = log_revenue(df)
        regressor.fit(X, target)
        linear.fit(df, target)
    return Model(
        features=feats,
        classifier=head(params).fit(X, y),
        regressor=regressor,
        baselines=Baselines(
            majority=DummyClassifier(strategy="prior").fit(df[["budget"]], y),
            logreg_budget=BudgetLogistic().fit(df, y),
            linear_budget=linear,
        ),
        params=params,
        train_rows=len(df),
    )


def predict_all(model: Model, df: pd.DataFrame, regress: bool = True) -> pd.DataFrame:
    """Per-film predictions of the model and the baselines."""
    X = model.encode(df)
    base = model.baselines
    out = pd.DataFrame(
        {
            "year": year_of(df),
            "success": df["success"].to_numpy(),
            "proba": model.success_probability(X),
            "proba_logreg_budget": base.logreg_budget.predict_proba(df)[:, 1],
            "proba_majority": base.majority.predict_proba(df[["budget"]])[:, 1],
        }
    )
    if regress:
        out["log_revenue"] = log_revenue(df)
        out["pred_log_revenue"] = model.log_revenue(X)
        out["pred_log_revenue_linear_budget"] = base.linear_budget.predict(df)
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
        parts.append(predict_all(fit_model(past, params, regress), now, regress))
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


def train(df: pd.DataFrame, params: TrainParams) -> Model:
    """Fit on the train split, with thresholds chosen on out-of-time predictions of its last
    years: the artefact that evaluate, backtest and the scorers load."""
    if df["success"].nunique() < 2:
        raise UserError("train: the train split has a single class; widen the data range")
    years = threshold_years(df, params)
    if years:
        thresholds = thresholds_from(expanding_window(df, years, params, regress=False))
    else:
        thresholds = {"model": 0.5, "logreg_budget": 0.5, "majority": 0.5}
    model = fit_model(df, params)
    baselines = dataclasses.replace(
        model.baselines,
        majority_threshold=thresholds["majority"],
        logreg_budget_threshold=thresholds["logreg_budget"],
    )
    return dataclasses.replace(
        model, threshold=thresholds["model"], baselines=baselines, threshold_years=tuple(years)
    )
