"""The bundled sample: reading it and mapping its rows to normalized records."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest

from stages.core.cli import UserError
from stages.core.schema import FIELDS
from stages.sources.sample import SAMPLE_FIELDS, map_sample, parse_sample_date, read_sample
from tests.conftest import ROOT

SAMPLE = ROOT / "data" / "sample" / "movies.json.gz"


def sample_row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(SAMPLE_FIELDS)
    row.update(
        {
            "Title": "Jaws 2",
            "Worldwide Gross": 187884007,
            "Production Budget": 20000000,
            "Release Date": "Jun 16 1978",
            "MPAA Rating": "PG",
            "Major Genre": "Horror",
            "IMDB Votes": 1000,
        }
    )
    row.update(overrides)
    return row


def test_bundled_sample_has_every_film() -> None:
    rows = read_sample(SAMPLE)
    assert len(rows) == 3201
    assert set(rows[0]) == set(SAMPLE_FIELDS)


def test_maps_sample_row_to_normalized_record() -> None:
    (rec,) = map_sample([sample_row()], "x")
    assert set(rec) == set(FIELDS)
    assert rec["release_date"] == "1978-06-16"
    assert rec["genres"] == ["Horror"]
    assert rec["budget"] == 20000000
    assert rec["revenue"] == 187884007
    assert rec["is_sequel"] is True
    assert rec["vote_count"] == 1000


def test_ids_follow_file_order() -> None:
    recs = map_sample([sample_row(), sample_row(Title="Jaws")], "x")
    assert [r["id"] for r in recs] == [1, 2]
    assert recs[1]["is_sequel"] is False


def test_unparseable_date_becomes_none() -> None:
    assert parse_sample_date("sometime in 1998") is None
    assert parse_sample_date(None) is None


def test_missing_column_names_record_and_field() -> None:
    row = sample_row()
    del row["Production Budget"]
    with pytest.raises(UserError) as err:
        map_sample([sample_row(), row], "movies.json.gz")
    assert str(err.value) == (
        "movies.json.gz: record 2 has no field 'Production Budget'; "
        "restore the file from git (git checkout -- movies.json.gz)"
    )


def test_invalid_json_names_position(tmp_path: Path) -> None:
    path = tmp_path / "movies.json.gz"
    path.write_bytes(gzip.compress(b'[{"Title": "x",\n oops}]'))
    with pytest.raises(UserError) as err:
        read_sample(path)
    assert str(err.value) == (
        f"{path}: not valid JSON (line 2, column 2: Expecting property name enclosed in "
        "double quotes); restore it from git"
    )
