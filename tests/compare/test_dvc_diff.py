"""DVC's diff JSON split into the two sides the report compares."""

from __future__ import annotations

from stages.compare.dvc_diff import commands, plot_specs, sides


def test_metrics_diff_json_to_base_and_head() -> None:
    diff = {
        "models/metrics.json": {
            "roc_auc": {"old": 0.7, "new": 0.8, "diff": 0.1},
            "rows": {"old": 50, "new": 50, "diff": 0},
            "new_metric": {"old": None, "new": 1.0},
        },
        "models/backtest_by_year.json": {"2006.roc_auc": {"old": 0.6, "new": 0.65}},
    }
    s = sides(diff, "models/metrics.json")
    assert s.base == {"roc_auc": 0.7, "rows": 50, "models/backtest_by_year.json:2006.roc_auc": 0.6}
    assert s.head["new_metric"] == 1.0
    assert s.head["models/backtest_by_year.json:2006.roc_auc"] == 0.65


def test_a_base_without_metrics_has_none() -> None:
    s = sides({"models/metrics.json": {"roc_auc": {"old": None, "new": 0.7}}}, "x")
    assert s.base is None
    assert sides({}, "models/metrics.json").base is None


def test_commands_are_dvcs_own_with_json_and_all() -> None:
    cmds = commands("main")
    assert cmds["metrics"] == ["dvc", "metrics", "diff", "--all", "--json", "main"]
    assert cmds["params"] == ["dvc", "params", "diff", "--all", "--json", "main"]
    assert cmds["plots"] == ["dvc", "plots", "diff", "--json", "main"]


def test_plot_specs_keep_dvc_yaml_order_and_skip_images() -> None:
    data = {
        "data": {
            "ROC": [{"type": "vega", "revisions": ["workspace", "main"], "content": {"a": 1}}],
            "img.png": [{"type": "image", "revisions": ["main"], "url": "x"}],
            "PR": [{"type": "vega", "revisions": ["workspace"], "content": {"b": 2}}],
        }
    }
    specs = plot_specs(data)
    assert [p.title for p in specs] == ["ROC", "PR"]
    assert specs[0].revisions == ("workspace", "main")
