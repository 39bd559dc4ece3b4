from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stages.backtest import backtest, main
from stages.core.cli import UserError
from stages.model.artifact import save_model
from stages.prepare import prepare
from stages.train import train
from tests.conftest import SNAPSHOT, fixture_split
from tests.stages.test_train import PARAMS

SPLIT = fixture_split()


@pytest.fixture
def films(records: Callable[..., list[dict[str, Any]]]) -> pd.DataFrame:
    out = prepare(records(), SPLIT, SNAPSHOT)
    return pd.concat([out.train, out.test], ignore_index=True)


def test_backtests_the_last_years_each_from_earlier_films(films: pd.DataFrame) -> None:
    res = backtest(films, PARAMS, n_years=3)
    years = sorted(set(films["release_date"].dt.year))
    assert sorted(res["by_year"]) == [str(y) for y in years[-3:]]
    for y, m in res["by_year"].items():
        assert m["train_rows"] == int((films["release_date"].dt.year < int(y)).sum())
        assert m["rows"] == int((films["release_date"].dt.year == int(y)).sum())
        assert {"baseline_majority", "baseline_logreg_budget", "baseline_linear_budget"} <= set(m)
    rocs = [m["roc_auc"] for m in res["by_year"].values()]
    assert res["mean"]["roc_auc"] == pytest.approx(np.mean(rocs), abs=1e-6)
    assert res["mean"]["baseline_majority"]["roc_auc"] == 0.5
    assert "rmsle" in res["mean"]["baseline_linear_budget"]


def test_later_outcomes_do_not_change_earlier_backtest_years(films: pd.DataFrame) -> None:
    """Scrambling the last year's outcomes leaves every earlier year's results unchanged."""
    last = films["release_date"].dt.year.max()
    scrambled = films.copy()
    now = scrambled["release_date"].dt.year == last
    scrambled.loc[now, "success"] = 1 - scrambled.loc[now, "success"]
    scrambled.loc[now, "revenue"] = scrambled.loc[now, "revenue"] * 7
    a = backtest(films, PARAMS, n_years=3)["by_year"]
    b = backtest(scrambled, PARAMS, n_years=3)["by_year"]
    for y in sorted(a)[:-1]:
        assert a[y] == b[y]
    assert a[str(last)] != b[str(last)]


def test_years_beyond_the_data_is_a_user_error(films: pd.DataFrame) -> None:
    # years < 1 is refused when params.yaml is loaded (the range is declared on the field);
    # the upper bound depends on the data, so backtest() checks it.
    with pytest.raises(UserError, match=r"backtest\.years is 100"):
        backtest(films, PARAMS, n_years=100)


def test_main_writes_results_using_the_models_params(tmp_path: Path, films: pd.DataFrame) -> None:
    cut = pd.Timestamp("2006-01-01")
    train_df, test_df = films[films["release_date"] < cut], films[films["release_date"] >= cut]
    params = replace(PARAMS, max_iter=5)
    save_model(tmp_path / "m.skops", train(train_df, params))
    train_df.to_parquet(tmp_path / "train.parquet", index=False)
    test_df.to_parquet(tmp_path / "test.parquet", index=False)
    (tmp_path / "params.yaml").write_text("backtest:\n  years: 2\n")
    argv = [
        "--params",
        str(tmp_path / "params.yaml"),
        "--model",
        str(tmp_path / "m.skops"),
        "--train",
        str(tmp_path / "train.parquet"),
        "--test",
        str(tmp_path / "test.parquet"),
        "--output",
        str(tmp_path / "bt.json"),
    ]
    assert main(argv) == 0
    first = (tmp_path / "bt.json").read_bytes()
    assert json.loads(first) == backtest(films, params, n_years=2)
    assert main(argv) == 0
    assert (tmp_path / "bt.json").read_bytes() == first
