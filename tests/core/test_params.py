from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from stages.core.cli import UserError
from stages.core.params import load_key, load_section


@dataclass(frozen=True)
class Demo:
    source: Literal["a", "b"]
    ratio: float
    count: int
    day: dt.date
    tags: tuple[str, ...]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


GOOD = "demo:\n  source: a\n  ratio: 2\n  count: 3\n  day: '2006-01-01'\n  tags: [x, y]\n"


def test_loads_and_coerces_types(tmp_path: Path) -> None:
    p = load_section(Demo, "demo", write(tmp_path, GOOD))
    assert p == Demo("a", 2.0, 3, dt.date(2006, 1, 1), ("x", "y"))


def test_missing_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("  count: 3\n", ""))
    with pytest.raises(UserError) as err:
        load_section(Demo, "demo", path)
    assert str(err.value) == f"{path}: key 'demo.count' is missing; add it to {path}"


def test_unknown_literal_lists_allowed_values(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("source: a", "source: c"))
    with pytest.raises(UserError) as err:
        load_section(Demo, "demo", path)
    assert str(err.value) == f"{path}: key 'demo.source' is 'c'; use one of 'a', 'b'"


def test_wrong_type_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("count: 3", "count: many"))
    with pytest.raises(UserError) as err:
        load_section(Demo, "demo", path)
    assert str(err.value) == f"{path}: key 'demo.count' must be an integer, got 'many'"


def test_unknown_key_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "  colour: red\n")
    with pytest.raises(UserError, match=r"key 'demo.colour' is not a known parameter"):
        load_section(Demo, "demo", path)


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "demo:\n  source: [a\n")
    with pytest.raises(UserError, match=r"params.yaml: not valid YAML at line 3; fix the syntax"):
        load_section(Demo, "demo", path)


def test_missing_section(tmp_path: Path) -> None:
    path = write(tmp_path, "other: {}\n")
    with pytest.raises(UserError) as err:
        load_section(Demo, "demo", path)
    assert str(err.value) == f"{path}: section 'demo' is missing or not a mapping; add it"


def test_range_declared_on_the_field_is_checked_at_load(tmp_path: Path) -> None:
    from stages.compare.gate import RetrainParams

    path = write(tmp_path, "retrain:\n  guarded_metrics: [roc_auc]\n  tolerance: -0.1\n")
    with pytest.raises(UserError) as err:
        load_section(RetrainParams, "retrain", path)
    assert str(err.value) == (
        f"{path}: key 'retrain.tolerance' must be greater than or equal to 0, got -0.1; fix it"
    )


def test_non_finite_float_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("ratio: 2", "ratio: .nan"))
    with pytest.raises(UserError) as err:
        load_section(Demo, "demo", path)
    assert str(err.value) == f"{path}: key 'demo.ratio' must be a finite number, got nan; fix it"


def test_load_key_of_a_params_class_applies_the_fields_range(tmp_path: Path) -> None:
    from stages.model.params import TrainParams

    path = write(tmp_path, "train:\n  max_leaf_nodes: 1\n")
    with pytest.raises(UserError, match=r"key 'train.max_leaf_nodes' must be greater than or"):
        load_key(TrainParams, "train", "max_leaf_nodes", path)
