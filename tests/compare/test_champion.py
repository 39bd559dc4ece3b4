"""The champion read through DVC and both real models scored on the real test split."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stages.compare.champion import base_model, champion_vs_challenger, lock_md5, probabilities
from stages.compare.gate import RetrainParams, decide
from stages.compare.readers import RevReader
from stages.model.artifact import load_model
from stages.model.fit import single_thread, train
from tests.support import sh

LOCK = """\
schema: '2.0'
stages:
  train:
    cmd: python -m stages.train
    outs:
    - path: models/model.skops
      hash: md5
      md5: 0123abcd
      size: 10
"""


def test_lock_md5_finds_the_output_of_any_stage() -> None:
    assert lock_md5(LOCK, "models/model.skops") == "0123abcd"
    assert lock_md5(LOCK, "models/other.skops") is None
    assert lock_md5(None, "models/model.skops") is None
    assert lock_md5("stages: [", "models/model.skops") is None


@pytest.mark.e2e
def test_base_model_is_the_revisions_model_read_through_dvc(reproduced_project: Path) -> None:
    rev = sh("git", "rev-parse", "HEAD", cwd=reproduced_project).stdout.strip()
    champion = base_model(RevReader(reproduced_project, rev), "`main`")
    test = pd.read_parquet(reproduced_project / "data/prepared/test.parquet")
    workspace = load_model(reproduced_project / "models/model.skops")
    np.testing.assert_array_equal(probabilities(champion, test), probabilities(workspace, test))


@pytest.mark.e2e
def test_real_models_on_the_real_test_split(reproduced_project: Path) -> None:
    champion = load_model(reproduced_project / "models/model.skops")
    # a real challenger: the same train split, a smaller model
    train_df = pd.read_parquet(reproduced_project / "data/prepared/train.parquet")
    with single_thread():
        challenger = train(train_df, dataclasses.replace(champion.params, max_iter=20))
    test = pd.read_parquet(reproduced_project / "data/prepared/test.parquet")
    same = champion_vs_challenger(champion, challenger, test, rounds=50, seed=1, label="`main`")
    metrics = json.loads((reproduced_project / "models/metrics.json").read_text())
    assert same.rows == metrics["rows"] == len(test)
    # the champion's ROC AUC on these rows is the one evaluate reported for it
    assert same.get("roc_auc").base == pytest.approx(metrics["roc_auc"], abs=1e-6)
    assert same.get("roc_auc").head != same.get("roc_auc").base
    validation = json.loads((reproduced_project / "data/prepared/validation.json").read_text())
    params = RetrainParams(guarded_metrics=("roc_auc",), tolerance=1.0)
    assert decide(validation, same, params).action == "commit"
