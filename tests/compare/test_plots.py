"""Plots of `dvc plots diff` as files beside the report; PNG only with vl-convert."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stages.compare import plots
from stages.compare.dvc_diff import PlotSpec
from tests.require import need

SPEC = {
    "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
    "data": {"values": [{"x": 0.0, "y": 1.0, "rev": "a"}, {"x": 1.0, "y": float("inf")}]},
    "mark": "line",
    "encoding": {
        "x": {"field": "x", "type": "quantitative"},
        "y": {"field": "y", "type": "quantitative"},
    },
}


def test_slug() -> None:
    assert plots.slug("Backtest ROC AUC by year") == "backtest_roc_auc_by_year"
    assert plots.slug("???") == "plot"


def test_without_vl_convert_the_spec_is_kept_and_the_report_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plots, "converter", lambda: None)
    done, note = plots.render([PlotSpec("ROC", SPEC, ("a", "b"))], tmp_path)
    assert done[0].png is None
    assert note is not None
    assert "vl-convert-python is not installed" in note
    spec = json.loads((tmp_path / "plot_roc.vl.json").read_text())
    assert spec["data"]["values"][1]["y"] is None  # Infinity breaks vega tools


def test_png_with_vl_convert(tmp_path: Path) -> None:
    need(plots.converter() is not None, "vl-convert-python is not installed: no PNG rendering")
    done, note = plots.render([PlotSpec("ROC", SPEC, ("a",))], tmp_path)
    assert note is None
    assert done[0].png == "plot_roc.png"
    assert (tmp_path / "plot_roc.png").read_bytes()[:4] == b"\x89PNG"
