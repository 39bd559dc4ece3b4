"""The batch scoring command as a real subprocess: CSV and JSONL in, scores and rejects out."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from stages.model.artifact import load_model
from stages.scoring.score import score, to_columns, validate_batch
from tests.conftest import ROOT, sh, tool_env

GOOD = {"title": "Good", "release_date": "2009-07-01", "budget": 30000000, "genres": ["Drama"]}


def predict(
    tmp_path: Path, model: Path | None, src: Path, *extra: str | Path, cwd: Path = ROOT
) -> tuple[int, str]:
    choose: list[str | Path] = ["--model", model] if model is not None else []
    proc = sh(
        "python",
        "-m",
        "stages.predict",
        *choose,
        "--input",
        src,
        "--output",
        tmp_path / "scores.csv",
        *extra,
        cwd=cwd,
        check=False,
        env=tool_env(),
    )
    return proc.returncode, proc.stderr


def test_jsonl_scores_good_rows_and_lists_rejected(tmp_path: Path, model_path: Path) -> None:
    src = tmp_path / "movies.jsonl"
    lines = [
        json.dumps(GOOD),
        json.dumps(dict(GOOD, title="Neg", budget=-1)),
        "{not json",
        json.dumps(dict(GOOD, title="Late", revenue=5)),
        "",
        json.dumps(dict(GOOD, title="Odd", genres=["Space Opera"])),
        json.dumps(["a", "list"]),
        json.dumps(dict(GOOD, title="Second", budget=90000000, runtime=130)),
    ]
    src.write_text("\n".join(lines) + "\n")
    code, err = predict(tmp_path, model_path, src)
    assert code == 0, err
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert list(scores.columns) == [
        "row",
        "title",
        "release_date",
        "success_probability",
        "predicted_revenue",
        "success",
    ]
    assert scores["row"].tolist() == [1, 7]  # the blank line is not a movie
    assert scores["title"].tolist() == ["Good", "Second"]
    valid = validate_batch([json.loads(lines[0]), json.loads(lines[7])], None)
    expected = score(load_model(model_path), to_columns(valid.columns))
    assert scores["success_probability"].tolist() == pytest.approx(
        expected.success_probability.tolist(), abs=1e-6
    )
    assert scores["predicted_revenue"].tolist() == pytest.approx(
        expected.predicted_revenue.tolist(), abs=0.01
    )
    rejected = pd.read_csv(tmp_path / "scores.rejected.csv")
    reasons = dict(zip(rejected["row"], rejected["reason"], strict=True))
    assert set(reasons) == {2, 3, 4, 5, 6}
    assert reasons[2].startswith("budget: ")
    assert "Invalid JSON" in reasons[3]
    assert "'revenue' is a post-release field" in reasons[4]
    assert "unknown genre 'Space Opera'" in reasons[5]
    assert "row 2 rejected: budget" in err


def test_csv_with_list_cells_and_empty_cells(tmp_path: Path, model_path: Path) -> None:
    src = tmp_path / "movies.csv"
    with open(src, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["title", "release_date", "budget", "runtime", "genres", "is_sequel"])
        w.writerow(["Pipes", "2008-05-02", "20000000", "", "Action|Adventure", "true"])
        w.writerow(["Json", "2008-05-02", "20000000", "95", '["Action", "Adventure"]', ""])
        w.writerow(["NoDate", "", "20000000", "95", "Drama", ""])
        w.writerow(["Text", "2008-05-02", "a lot", "95", "Drama", ""])
    code, err = predict(tmp_path, model_path, src, "--rejected", tmp_path / "bad.csv")
    assert code == 0, err
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert scores["title"].tolist() == ["Pipes", "Json"]
    assert scores["success_probability"].between(0, 1).all()
    rejected = pd.read_csv(tmp_path / "bad.csv")
    assert rejected["row"].tolist() == [3, 4]
    assert rejected["reason"].str.startswith(("release_date: Field required", "budget: ")).all()


def test_csv_with_a_post_release_column_is_a_user_error(tmp_path: Path, model_path: Path) -> None:
    src = tmp_path / "movies.csv"
    src.write_text("title,release_date,budget,revenue\nA,2008-01-01,100,5\n")
    code, err = predict(tmp_path, model_path, src)
    assert code == 2
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(f"error: {src}: column 'revenue' is not a pre-release field; remove it")
    )
    assert "Traceback" not in err
    assert not (tmp_path / "scores.csv").exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("movies.txt", "x", "unknown format '.txt'; use a .csv or .jsonl file"),
        ("movies.csv", "title,budget\nA,1\n", "no column 'release_date'"),
        ("movies.jsonl", '{"title": "A"}\n', "every row was rejected"),
    ],
)
def test_bad_files_are_one_line_errors(
    tmp_path: Path, model_path: Path, name: str, content: str, message: str
) -> None:
    src = tmp_path / name
    src.write_text(content)
    code, err = predict(tmp_path, model_path, src)
    assert code == 2
    assert message in err.strip().splitlines()[-1]
    assert "Traceback" not in err


def test_missing_model_is_a_user_error(tmp_path: Path) -> None:
    src = tmp_path / "m.jsonl"
    src.write_text(json.dumps(GOOD) + "\n")
    code, err = predict(tmp_path, tmp_path / "none.skops", src)
    assert code == 2
    assert "model not found; run 'make repro'" in err


def test_the_default_model_is_the_train_output_in_dvc_lock(
    tmp_path: Path, model_path: Path
) -> None:
    """Without --model, the command scores with the file dvc.lock records for `train`, and
    reads nothing of the service's settings (MODEL_PATH is the service's variable)."""
    src = tmp_path / "m.jsonl"
    src.write_text(json.dumps(GOOD) + "\n")
    (tmp_path / "dvc.lock").write_text(
        f"schema: '2.0'\nstages:\n  train:\n    outs:\n    - path: {model_path}\n      md5: ab\n"
    )
    code, err = predict(tmp_path, None, src, cwd=tmp_path)
    assert code == 0, err
    assert pd.read_csv(tmp_path / "scores.csv")["title"].tolist() == ["Good"]
    (tmp_path / "dvc.lock").unlink()
    code, err = predict(tmp_path, None, src, cwd=tmp_path)
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        "error: dvc.lock: no 'train' model output found; run 'make repro' or pass --model"
    )


def test_a_bad_model_with_workers_is_a_user_error(tmp_path: Path) -> None:
    """This process loads the model before the workers get it: its error is the one line,
    and the waiting workers are released."""
    src = tmp_path / "m.jsonl"
    src.write_text(json.dumps(GOOD) + "\n")
    bad = tmp_path / "bad.skops"
    bad.write_bytes(b"not a zip")
    code, err = predict(tmp_path, bad, src, "--jobs", "2")
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(f"error: {bad}: not a readable skops model")
    assert "Traceback" not in err
    assert not (tmp_path / "scores.csv").exists()


def test_jobs_below_one_is_a_user_error(tmp_path: Path, model_path: Path) -> None:
    src = tmp_path / "m.jsonl"
    src.write_text(json.dumps(GOOD) + "\n")
    code, err = predict(tmp_path, model_path, src, "--jobs", "0")
    assert code == 2
    assert err.strip().splitlines()[-1] == "error: --jobs 0: use 1 or more processes"
