"""The batch scoring command as a real subprocess: CSV and JSONL in, scores and rejects out."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from stages import predict as predict_stage
from stages.model.artifact import load_model
from stages.predict import SCORE_COLUMNS, read_chunks, write_scores
from stages.scoring.score import Movie, known_genres, movie_columns, prepare_model, score, validate
from tests.conftest import ROOT, sh, tool_env

GOOD = {"title": "Good", "release_date": "2009-07-01", "budget": 30000000, "genres": ["Drama"]}


def predict(tmp_path: Path, model: Path, src: Path, *extra: str | Path) -> tuple[int, str]:
    proc = sh(
        "python",
        "-m",
        "stages.predict",
        "--model",
        model,
        "--input",
        src,
        "--output",
        tmp_path / "scores.csv",
        *extra,
        cwd=ROOT,
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
    expected = score(
        load_model(model_path),
        movie_columns(
            [Movie.model_validate(json.loads(lines[0])), Movie.model_validate(json.loads(lines[7]))]
        ),
    )
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


def test_chunks_give_the_same_files_as_one_chunk(tmp_path: Path, model_path: Path) -> None:
    """Rows scored a chunk at a time
    give the same files as one chunk: order, row numbers and one header, whatever the chunk
    boundaries and with a chunk that is rejected entirely."""
    lines = [json.dumps(dict(GOOD, title=f"T{i}", budget=1_000_000 + i)) for i in range(23)]
    for i in (0, 1, 2, 9, 22):  # the whole first chunk of 3 is rejected
        lines[i] = json.dumps(dict(GOOD, budget=-i - 1))
    lines[14] = "{not json"
    src = tmp_path / "movies.jsonl"
    src.write_text("\n".join(lines) + "\n")
    files = []
    for chunk in (3, 7, 1000):
        out, rej = io.StringIO(), io.StringIO()
        written = write_scores(model_path, read_chunks(src, chunk), out, rej)
        assert (written.scored, written.rejected) == (17, 6)
        files.append((out.getvalue(), rej.getvalue()))
    assert files[0] == files[1] == files[2]
    scores = pd.read_csv(io.StringIO(files[0][0]))
    assert tuple(scores.columns) == SCORE_COLUMNS
    assert scores["row"].tolist() == [n for n in range(1, 24) if n not in (1, 2, 3, 10, 15, 23)]
    assert pd.read_csv(io.StringIO(files[0][1]))["row"].tolist() == [1, 2, 3, 10, 15, 23]


def test_jsonl_lines_end_in_crlf_or_not_and_bad_utf8_is_one_rejected_row(
    tmp_path: Path, model_path: Path
) -> None:
    good = json.dumps(GOOD).encode()
    src = tmp_path / "movies.jsonl"
    src.write_bytes(good + b"\r\n" + b'{"title": "\xff"}\r\n' + b"  \r\n" + good)
    out, rej = io.StringIO(), io.StringIO()
    written = write_scores(model_path, read_chunks(src), out, rej)
    assert (written.scored, written.rejected) == (2, 1)
    assert pd.read_csv(io.StringIO(out.getvalue()))["row"].tolist() == [1, 3]
    assert written.first_rejected == [
        (2, "record: Invalid JSON: invalid unicode code point at line 1 column 12")
    ]


def test_jsonl_rows_are_validated_like_the_api(model_path: Path, tmp_path: Path) -> None:
    """A JSONL row is parsed as JSON, then validated like a request body (Python mode)."""
    model = prepare_model(load_model(model_path))
    lines = [json.dumps(dict(GOOD, budget="30000000")), json.dumps(dict(GOOD, is_sequel="yes"))]
    src = tmp_path / "movies.jsonl"
    src.write_text("\n".join(lines) + "\n")
    out, rej = io.StringIO(), io.StringIO()
    write_scores(model_path, read_chunks(src), out, rej)
    for line in lines:
        assert validate(json.loads(line), known_genres(model))[0] is not None
    assert pd.read_csv(io.StringIO(out.getvalue()))["row"].tolist() == [1, 2]


def test_worker_processes_write_the_same_files(tmp_path: Path, model_path: Path) -> None:
    """Chunks scored by a worker process (and by this one while the worker is busy or not
    started) come back in input order: the same bytes as one process, rejected rows
    included."""
    lines = [json.dumps(dict(GOOD, title=f"T{i}", budget=1_000_000 + i)) for i in range(40)]
    lines[3] = json.dumps(dict(GOOD, budget=-1))
    lines[31] = "{not json"
    src = tmp_path / "movies.jsonl"
    src.write_text("\n".join(lines) + "\n")
    files = []
    for jobs in (1, 2):
        out, rej = io.StringIO(), io.StringIO()
        write_scores(model_path, read_chunks(src, 4), out, rej, jobs=jobs)
        files.append((out.getvalue(), rej.getvalue()))
    assert files[0] == files[1]
    assert pd.read_csv(io.StringIO(files[1][1]))["row"].tolist() == [4, 32]

    model = prepare_model(load_model(model_path))
    scored_here: list[Sequence[int]] = []

    def here(chunk: predict_stage.RawChunk) -> predict_stage.Scored:
        scored_here.append(chunk[0])
        return predict_stage.process_chunk(model, known_genres(model), chunk)

    expected = [here(chunk) for chunk in read_chunks(src, 4)]
    scored_here.clear()
    spawn = multiprocessing.get_context("spawn")
    models = spawn.Queue()
    models.put(model)
    with ProcessPoolExecutor(
        1, spawn, initializer=predict_stage._start_worker, initargs=(models,)
    ) as pool:
        started = pool.submit(int)
        started.result()  # the worker is ready: the first chunks go to it
        got = list(predict_stage._in_order(read_chunks(src, 4), here, pool, 1, started))
    assert got == expected
    assert len(scored_here) < len(expected)  # the worker scored some chunks


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
