"""validate_batch (field by field) against one Movie per record (the definition), and score."""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest

from stages.scoring.score import (
    MOVIE_FIELDS,
    _validate_one,
    to_columns,
    validate_batch,
)

KNOWN = frozenset({"Action", "Drama"})
GOOD: dict[str, Any] = {"title": "Good", "release_date": "2009-07-01", "budget": 30_000_000}

AWKWARD: list[Any] = [
    GOOD,
    dict(GOOD, title="  Padded  ", genres=["Drama"], cast=["A", "B"]),
    dict(GOOD, budget="45000000", runtime="95", is_sequel="yes"),
    dict(GOOD, runtime=95.0, release_date=dt.date(2001, 2, 3)),
    dict(GOOD, runtime=95.5),
    dict(GOOD, runtime=0),
    dict(GOOD, runtime=None, certification=None),
    dict(GOOD, budget=-1),
    dict(GOOD, budget=10**30),
    dict(GOOD, budget=True),
    dict(GOOD, title="   "),
    dict(GOOD, title=123),
    dict(GOOD, release_date="2010-02-30"),
    dict(GOOD, release_date="18/06/2010"),
    dict(GOOD, release_date=1_276_819_200),
    dict(GOOD, genres="Drama"),
    dict(GOOD, genres=["Space Opera", "Drama", "Western"]),
    dict(GOOD, genres=[]),
    dict(GOOD, genres=["Drama"] * 51),
    dict(GOOD, is_sequel="perhaps"),
    dict(GOOD, revenue=5),
    dict(GOOD, colour="blue"),
    {"title": "No date", "budget": 1},
    {},
    OrderedDict(GOOD),
    ["a", "list"],
    "a string",
    None,
    17,
]


@pytest.mark.parametrize(
    "records",
    [AWKWARD, [r for r in AWKWARD if not isinstance(r, OrderedDict)]],
    ids=["some-accepted-by-movie", "all-accepted-field-by-field"],
)
def test_same_outcome_and_reasons_as_one_movie_at_a_time(records: list[Any]) -> None:
    got = validate_batch(records, KNOWN)
    expected = [_validate_one(r, KNOWN)[:2] for r in records]
    assert got.accepted == [i for i, (m, _) in enumerate(expected) if m is not None]
    assert got.refused == {i: p for i, (m, p) in enumerate(expected) if m is None}
    movies = [m for m, _ in expected if m is not None]
    for name in MOVIE_FIELDS:
        assert got.columns[name] == [getattr(m, name) for m in movies], name


def test_past_the_detail_limit_problems_are_counted_not_built() -> None:
    records = [dict(GOOD, **{f"x{k}": k for k in range(30)}) for _ in range(50)]
    records.append(dict(GOOD, genres=["Space Opera"]))
    full = validate_batch(records, KNOWN)
    limited = validate_batch(records, KNOWN, detail=20)
    assert limited.problem_count == full.problem_count == 30 * 50 + 1
    assert limited.refused[0] == full.refused[0]
    assert limited.refused[50] == full.refused[50]  # genres: always built (a few at most)
    assert [limited.refused[i] for i in range(1, 50)] == [[]] * 49


def test_accepts_a_large_valid_batch_without_refusals() -> None:
    records = [dict(GOOD, title=f"T{i}", budget=i + 1, genres=["Action"]) for i in range(5000)]
    got = validate_batch(records, KNOWN)
    assert got.accepted == list(range(5000))
    assert not got.refused
    assert got.columns["budget"][-1] == 5000
    assert got.columns["cast"][0] == []  # the default of a missing list field


def test_an_empty_batch() -> None:
    got = validate_batch([], KNOWN)
    assert (got.accepted, got.refused) == ([], {})
    assert to_columns(got.columns)["title"].shape == (0,)


@pytest.mark.parametrize("genres", [["Action"], ["Action", "Drama"]])
def test_columns_keep_lists_one_per_row(genres: list[str]) -> None:
    """Equal-length lists stay one object per row (np.array would make a 2-D array)."""
    valid = validate_batch([dict(GOOD, genres=genres)] * 3, KNOWN)
    cols = to_columns(valid.columns)
    assert cols["genres"].shape == (3,)
    assert cols["genres"][0] == genres
    assert cols["release_date"].dtype == np.dtype("datetime64[D]")


def test_batch_columns_equal_the_movie_columns() -> None:
    valid = validate_batch(AWKWARD, KNOWN)
    movies = [m for m, *_ in (_validate_one(r, KNOWN) for r in AWKWARD) if m is not None]
    one = to_columns({name: [getattr(m, name) for m in movies] for name in MOVIE_FIELDS})
    batch = to_columns(valid.columns)
    assert batch.keys() == one.keys()
    for name in batch:
        assert batch[name].dtype == one[name].dtype, name
        assert batch[name].tolist() == one[name].tolist(), name
