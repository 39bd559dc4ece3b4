"""The batch scoring package: reading, chunking, validating and scoring files of movies in
this process and in worker processes, and the CSV files it writes."""

from __future__ import annotations

import io
import json
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from stages.model.artifact import load_model
from stages.scoring import batch
from stages.scoring.batch import SCORE_COLUMNS, read_chunks, write_scores
from stages.scoring.score import Movie, known_genres, problems_from, validate_batch

GOOD = {"title": "Good", "release_date": "2009-07-01", "budget": 30000000, "genres": ["Drama"]}


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
    model = load_model(model_path)
    lines = [json.dumps(dict(GOOD, budget=30000000)), json.dumps(dict(GOOD, is_sequel=True))]
    src = tmp_path / "movies.jsonl"
    src.write_text("\n".join(lines) + "\n")
    out, rej = io.StringIO(), io.StringIO()
    write_scores(model_path, read_chunks(src), out, rej)
    for line in lines:
        assert validate_batch([json.loads(line)], known_genres(model)).accepted == [0]
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

    model = load_model(model_path)
    scored_here: list[Sequence[int]] = []

    def here(chunk: batch.RawChunk) -> batch.Scored:
        scored_here.append(chunk[0])
        return batch.process_chunk(model, known_genres(model), chunk)

    expected = [here(chunk) for chunk in read_chunks(src, 4)]
    scored_here.clear()
    spawn = multiprocessing.get_context("spawn")
    models = spawn.Queue()
    models.put(model)
    with ProcessPoolExecutor(1, spawn, initializer=batch._start_worker, initargs=(models,)) as pool:
        started = pool.submit(int)
        started.result()  # the worker is ready: the first chunks go to it
        got = list(batch._in_order(read_chunks(src, 4), here, pool, 1, started))
    assert got == expected
    assert len(scored_here) < len(expected)  # the worker scored some chunks


def test_csv_rows_with_too_few_or_too_many_cells_are_rejected_rows(
    tmp_path: Path, model_path: Path
) -> None:
    """A short row is refused like a long one (it used to crash on a missing list cell)."""
    src = tmp_path / "movies.csv"
    src.write_text(
        "title,release_date,budget,genres\n"
        "Good,2009-07-01,30000000,Drama\n"
        "Short,2009-07-01\n"
        "Long,2009-07-01,30000000,Drama,extra\n"
    )
    out, rej = io.StringIO(), io.StringIO()
    written = write_scores(model_path, read_chunks(src), out, rej)
    assert (written.scored, written.rejected) == (1, 2)
    assert written.first_rejected == [
        (2, "has 2 cells, the header has 4"),
        (3, "has 5 cells, the header has 4"),
    ]


def test_a_jsonl_line_orjson_refuses_is_parsed_and_validated_like_the_others(
    tmp_path: Path, model_path: Path
) -> None:
    """pydantic's parser reads what orjson refuses (NaN, a number beyond a double): such a
    line gets the field's reason, the one Movie gives the same JSON text; a line that is not
    JSON gets the parser's reason."""
    src = tmp_path / "movies.jsonl"
    lines = [json.dumps(dict(GOOD, budget=b)).replace('"X"', "1e400") for b in (1, "X")]
    lines[0] = lines[0].replace(": 1,", ": NaN,")
    src.write_text("\n".join([json.dumps(GOOD), *lines, "[1, 2"]) + "\n")
    out, rej = io.StringIO(), io.StringIO()
    written = write_scores(model_path, read_chunks(src), out, rej)
    assert (written.scored, written.rejected) == (1, 3)
    assert [row for row, _ in written.first_rejected] == [2, 3, 4]
    for (_, reason), line in zip(written.first_rejected, lines, strict=False):
        with pytest.raises(ValidationError) as exc:
            Movie.model_validate_json(line)
        assert reason == "; ".join(p.describe() for p in problems_from(exc.value))
        assert reason.startswith("budget: Input should be a")
    assert written.first_rejected[2][1].startswith("record: Invalid JSON: ")
