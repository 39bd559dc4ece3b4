"""The model card (markdown): every statement in it comes from this run's data and model.

What is said about the data (sources, date ranges, coverage of each input field, films left
out as too recent) is read from prepare's validation report; what is said about the features
(those left out because a source never fills them, the runtime decision) from the fitted
feature step; source-specific caveats are added only for the sources actually present.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from stages.model.artifact import Model
from stages.model.features import INPUT_FIELDS, MAX_OUTCOME_COVERAGE_GAP, TOP_BILLED

METRIC_KEYS = ("roc_auc", "pr_auc", "log_loss", "brier", "f1", "precision", "recall", "accuracy")

# Caveats that are facts about one source, shown when its films are in the data.
SOURCE_CAVEATS = {
    "sample": [
        "The bundled sample (vega-datasets) is small and has known errors (two-digit years, "
        "numeric titles, repaired in `prepare`); one genre per film, no cast, companies, "
        "language or collection; the sequel flag is a title heuristic.",
        "In the sample, fields such as creative type and certification are missing more often "
        "for films that later flopped: the model may partly learn its record-keeping.",
    ],
    "tmdb": [
        "TMDB's keywords, cast lists and collections are user-contributed and grow after "
        "release: no count of them is a feature, keywords enter only through an allow-list of "
        "source-material facts, and a collection makes a sequel only after its first film.",
        "TMDB lists budgets and revenues for a minority of films, more often for well-known "
        "ones: the training films are not a random sample of all releases.",
    ],
}


def _table(rows: Mapping[str, Mapping[str, Any]], keys: Sequence[str]) -> list[str]:
    lines = ["| | " + " | ".join(keys) + " |", "| --- |" + " --- |" * len(keys)]
    for name, m in rows.items():
        lines.append(f"| {name} | " + " | ".join(str(m.get(k, "")) for k in keys) + " |")
    return lines


def _coverage(validation: Mapping[str, Any]) -> list[str]:
    coverage = validation.get("coverage", {})
    train, test = coverage.get("train", {}), coverage.get("test", {})
    lines = ["| field | train | test |", "| --- | --- | --- |"]
    for name in INPUT_FIELDS:
        if name in train:
            lines.append(f"| {name} | {train[name]:.0%} | {test.get(name, 0):.0%} |")
    return lines


def _features(model: Model) -> list[str]:
    feats = model.features
    names = list(feats.get_feature_names_out())
    genres = [n for n in names if n.startswith("genre_")]
    shown = [n for n in names if not n.startswith("genre_")]
    lines = [
        f"{len(names)} features: "
        + ", ".join(f"`{n}`" for n in shown)
        + (f", and {len(genres)} genre flags" if genres else "")
        + ".",
        f"Track records pool the earlier films of the director, the {TOP_BILLED} top-billed "
        "cast members, the production companies (or the distributor) and the TMDB collection; "
        "only films released strictly before a film count for it.",
    ]
    if feats.empty_fields_:
        lines.append(
            "Left out because no training film has them: "
            + ", ".join(f"`{f}`" for f in feats.empty_fields_)
            + "."
        )
    gap = feats.runtime_gap_
    if "runtime" not in feats.empty_fields_ and gap is not None:
        verdict = "used" if feats.uses_runtime else "left out"
        lines.append(
            f"Runtime is {verdict}: whether it is known differs by {gap:.0%} between "
            f"successes and flops in training (limit {MAX_OUTCOME_COVERAGE_GAP:.0%}), "
            + (
                "so its known-ness is not a post-release artefact here."
                if feats.uses_runtime
                else "which makes its known-ness a post-release artefact of this source."
            )
        )
    return lines


def model_card(
    m: Mapping[str, Any], model: Model, validation: Mapping[str, Any], top: pd.DataFrame
) -> str:
    """The card for metrics `m` of `model`, prepare's `validation` report and the `top`
    features by permutation importance."""
    ci = m["roc_auc_ci95"]
    label = validation.get("label", {})
    bt = m["backtest"]
    years = sorted(bt["by_year"])
    sources = validation.get("sources", {})
    immature = validation.get("immature", {})
    train, test = validation["train"], validation["test"]
    holdout = {
        "model": m,
        "baseline: logistic regression on log budget": m["baseline_logreg_budget"],
        "baseline: majority class": m["baseline_majority"],
    }
    backtest_rows = {
        "model (mean)": bt["mean"],
        "baseline: logistic regression on log budget (mean)": bt["mean"]["baseline_logreg_budget"],
        "baseline: majority class (mean)": bt["mean"]["baseline_majority"],
        **{y: bt["by_year"][y] for y in years},
    }
    source_text = ", ".join(f"{name} ({n} films)" for name, n in sorted(sources.items()))
    caveats = [c for name in sorted(sources) for c in SOURCE_CAVEATS.get(name, [])]
    lines = [
        "# Model card: movie commercial success",
        "",
        "Generated by the `evaluate` stage; every number below comes from this pipeline run.",
        "",
        "## Intended use",
        "",
        "Estimate, before release, the probability that a film is a commercial success and its",
        "worldwide revenue, as one input to green-light and marketing discussions about a slate",
        "of films. Only information known before release is used; no revenue, votes, ratings or",
        "popularity.",
        "",
        "## Data",
        "",
        f"- Source: {source_text or 'unknown'}; snapshot {label.get('snapshot_date', '?')}",
        f"- Rows: {validation['rows_in']} collected, {validation['rows_out']} labelled "
        f"(dropped: {validation['dropped']}; fixed: {validation['fixed']})",
        f"- Train: {train['rows']} films released {train['first_release']} to "
        f"{train['last_release']}, base rate {train['base_rate']}",
        f"- Test (chronological holdout): {test['rows']} films released "
        f"{test['first_release']} to {test['last_release']}, base rate {test['base_rate']}",
        f"- Too recent to judge (released after {immature.get('released_after', '?')}, "
        f"{label.get('maturity_days', '?')} days before the snapshot): "
        f"{immature.get('rows', 0)} films, no label"
        + (f" ({', '.join(immature['titles'])})" if immature.get("titles") else ""),
        "",
        "Coverage of each input field (share of films with a value):",
        "",
        *_coverage(validation),
        "",
        "## Label",
        "",
        f"`success = worldwide revenue ≥ {label.get('roi_threshold', '?')} × budget` "
        f"(ROI ≥ {label.get('roi_threshold', '?')}); base rate on the holdout {m['base_rate']}.",
        "A second head predicts log(1 + worldwide revenue), scored by RMSLE.",
        "",
        "## Features",
        "",
        *_features(model),
        "",
        "## Holdout metrics",
        "",
        f"ROC AUC {m['roc_auc']} (bootstrap 95 % interval {ci['lo']} to {ci['hi']}, "
        f"{m['rows']} films); RMSLE {m['rmsle']} vs {m['baseline_linear_budget']['rmsle']} "
        "for a linear regression on log budget.",
        f"Decision threshold {m['threshold']}, chosen to maximise F1 on out-of-time "
        f"predictions for the train years {list(model.threshold_years)} (never on test).",
        "",
        *_table(holdout, METRIC_KEYS),
        "",
        "## Backtest (expanding window by release year)",
        "",
        "Each year is predicted by a model fitted on all earlier films.",
        "",
        *_table(backtest_rows, [*METRIC_KEYS, "rmsle"]),
        "",
        f"Mean RMSLE: model {bt['mean']['rmsle']}, linear log-budget baseline "
        f"{bt['mean']['baseline_linear_budget']['rmsle']}.",
        "",
        "## Top features (permutation importance, drop in holdout ROC AUC)",
        "",
        "| feature | importance | std |",
        "| --- | --- | --- |",
        *[f"| {f} | {i} | {s} |" for f, i, s in top.itertuples(index=False, name=None)],
        "",
        "## Params",
        "",
        *[f"- `{k}`: {v}" for k, v in sorted(dataclasses.asdict(model.params).items())],
        "",
        "## Limitations",
        "",
        *[f"- {c}" for c in caveats],
        "- The track record is frozen at the end of the training data: for later films it",
        "  misses the directors', cast's and companies' most recent releases.",
        "- Probabilities are not recalibrated; see the calibration plot before reading them",
        "  as frequencies.",
        f"- Holdout ROC AUC is {m['roc_auc']}: read the scores as a ranking of a slate, not as",
        "  a decision about an individual film on its own.",
        "",
    ]
    return "\n".join(lines)
