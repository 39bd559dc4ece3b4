"""PNG renderings of the evaluation plots for reports (the CSVs feed `dvc plots`).

Uses matplotlib's object API (no pyplot, no global backend switch) and writes PNGs without
a Software/timestamp stamp, so the same data gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from stages.core.io import atomic_path

DPI = 80


def _save(fig: Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})


def _figure() -> tuple[Figure, Any]:
    fig = Figure(figsize=(5, 4), layout="constrained")
    return fig, fig.subplots()


def roc_png(roc: pd.DataFrame, auc: float, path: Path) -> None:
    fig, ax = _figure()
    ax.plot(roc["fpr"], roc["tpr"], label=f"model (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC (holdout)")
    ax.legend(loc="lower right")
    _save(fig, path)


def pr_png(pr: pd.DataFrame, base_rate: float, path: Path) -> None:
    fig, ax = _figure()
    ax.plot(pr["recall"], pr["precision"], label="model")
    ax.axhline(base_rate, linestyle="--", color="grey", label=f"base rate {base_rate:.3f}")
    ax.set(xlabel="Recall", ylabel="Precision", title="Precision-recall (holdout)")
    ax.legend(loc="upper right")
    _save(fig, path)


def calibration_png(cal: pd.DataFrame, path: Path) -> None:
    fig, ax = _figure()
    ax.plot(cal["predicted"], cal["observed"], marker="o", label="model")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    ax.set(xlabel="Mean predicted P(success)", ylabel="Observed success rate")
    ax.set(title="Calibration (holdout)", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    _save(fig, path)


def confusion_png(confusion: pd.DataFrame, path: Path) -> None:
    labels = ["flop", "success"]
    counts = pd.crosstab(confusion["actual"], confusion["predicted"]).reindex(
        index=labels, columns=labels, fill_value=0
    )
    fig, ax = _figure()
    ax.imshow(counts.to_numpy(), cmap="Blues")
    for (i, j), v in np.ndenumerate(counts.to_numpy()):
        ax.text(j, i, str(v), ha="center", va="center")
    ax.set_xticks(range(2), labels)
    ax.set_yticks(range(2), labels)
    ax.set(xlabel="Predicted", ylabel="Actual", title="Confusion matrix (holdout)")
    _save(fig, path)


def importance_png(imp: pd.DataFrame, path: Path, top: int = 15) -> None:
    head = imp.head(top).iloc[::-1]
    fig = Figure(figsize=(6, 5), layout="constrained")
    ax = fig.subplots()
    ax.barh(head["feature"], head["importance"], xerr=head["std"], color="tab:blue")
    ax.set(xlabel="Drop in ROC AUC when shuffled", title="Permutation importance (holdout)")
    _save(fig, path)


def backtest_png(bt: pd.DataFrame, path: Path) -> None:
    fig = Figure(figsize=(8, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(bt["year"], bt["roc_auc"], marker="o", label="model")
    left.plot(bt["year"], bt["baseline_logreg_budget_roc_auc"], marker="s", label="logreg budget")
    left.plot(bt["year"], bt["baseline_majority_roc_auc"], linestyle="--", label="majority")
    left.set(xlabel="Release year", ylabel="ROC AUC", title="Backtest ROC AUC")
    left.legend(loc="best")
    right.plot(bt["year"], bt["rmsle"], marker="o", label="model")
    right.plot(bt["year"], bt["baseline_linear_budget_rmsle"], marker="s", label="linear budget")
    right.set(xlabel="Release year", ylabel="RMSLE", title="Backtest RMSLE")
    right.legend(loc="best")
    for ax in (left, right):
        ax.set_xticks(bt["year"].tolist())
    _save(fig, path)


def write_pngs(folder: Path, frames: dict[str, pd.DataFrame], metrics: dict[str, Any]) -> None:
    roc_png(frames["roc"], metrics["roc_auc"], folder / "roc.png")
    pr_png(frames["pr"], metrics["base_rate"], folder / "pr.png")
    calibration_png(frames["calibration"], folder / "calibration.png")
    confusion_png(frames["confusion"], folder / "confusion.png")
    importance_png(frames["importance"], folder / "importance.png")
    backtest_png(frames["backtest"], folder / "backtest.png")
