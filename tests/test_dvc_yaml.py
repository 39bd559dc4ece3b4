"""dvc.yaml's code dependencies are what each stage imports: nothing missing (stale results
after an edit), nothing it does not import (needless re-runs)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def module_file(module: str) -> Path | None:
    """The file of a `stages` module (a package's __init__.py), or None if it is not ours."""
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_files(module: str) -> set[Path]:
    """Every file of ours that `python -m module` can import, following imports anywhere in
    a module (function-level imports included) and each package's __init__.py."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            path = module_file(".".join(parts[:i]))
            if path is None or path in seen:
                continue
            seen.add(path)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    todo += [a.name for a in node.names if a.name.startswith("stages")]
                elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stages"):
                    todo += [node.module or ""]
                    todo += [f"{node.module}.{a.name}" for a in node.names]
    return {p.relative_to(ROOT) for p in seen}


def code_deps(stage: dict) -> list[Path]:
    return [Path(d) for d in stage["deps"] if d.startswith("stages")]


def covered(path: Path, deps: list[Path]) -> bool:
    return any(path == d or d in path.parents for d in deps)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_a_stage_depends_on_every_file_it_imports(name: str) -> None:
    (module,) = re.findall(r"python -m (stages\.\w+)", STAGES[name]["cmd"])
    deps = code_deps(STAGES[name])
    missing = sorted(str(p) for p in imported_files(module) if not covered(p, deps))
    missing = [p for p in missing if p != "stages/__init__.py"]
    assert missing == [], f"dvc.yaml: stage '{name}' imports {missing} but does not depend on it"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_a_stage_depends_on_no_code_it_does_not_import(name: str) -> None:
    (module,) = re.findall(r"python -m (stages\.\w+)", STAGES[name]["cmd"])
    files = imported_files(module)
    unused = [str(d) for d in code_deps(STAGES[name]) if not any(covered(f, [d]) for f in files)]
    assert unused == [], f"dvc.yaml: stage '{name}' depends on {unused} without importing it"


def test_the_check_sees_a_function_level_import() -> None:
    """The model archive is read by skops inside a function: such imports count too."""
    assert Path("stages/model/artifact.py") in imported_files("stages.evaluate")
    assert Path("stages/sources/tmdb/client.py") not in imported_files("stages.train")
