"""TMDB movie JSON to the normalized record."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from stages.core.schema import FIELDS
from stages.sources.tmdb.mapping import (
    SOURCE_MATERIAL,
    SOURCE_PRIORITY,
    TOP_CAST,
    map_details,
    source_material,
)
from tests.sources.test_sample import SAMPLE

# Trimmed from a real /movie/949?append_to_response=credits,keywords,release_dates answer.
HEAT: dict[str, Any] = {
    "adult": False,
    "belongs_to_collection": None,
    "budget": 60000000,
    "genres": [{"id": 28, "name": "Action"}, {"id": 80, "name": "Crime"}],
    "id": 949,
    "imdb_id": "tt0113277",
    "original_language": "en",
    "original_title": "Heat",
    "popularity": 41.5,
    "production_companies": [
        {"id": 508, "name": "Regency Enterprises"},
        {"id": 675, "name": "Forward Pass"},
        {"id": 6194, "name": "Warner Bros. Pictures"},
    ],
    "release_date": "1995-12-15",
    "revenue": 187436818,
    "runtime": 170,
    "status": "Released",
    "title": "Heat",
    "vote_average": 7.9,
    "vote_count": 7049,
    "credits": {
        "cast": [
            {"name": "Robert De Niro", "order": 1},
            {"name": "Al Pacino", "order": 0},
            {"name": "Val Kilmer", "order": 2},
            {"name": "Jon Voight", "order": 3},
            {"name": "Tom Sizemore", "order": 4},
            {"name": "Diane Venora", "order": 5},
        ],
        "crew": [
            {"name": "Art Linson", "job": "Producer"},
            {"name": "Michael Mann", "job": "Director"},
            {"name": "Michael Mann", "job": "Screenplay"},
        ],
    },
    "keywords": {"keywords": [{"id": 642, "name": "robbery"}, {"id": 703, "name": "detective"}]},
    "release_dates": {
        "results": [
            {
                "iso_3166_1": "DE",
                "release_dates": [{"certification": "16", "type": 3}],
            },
            {
                "iso_3166_1": "US",
                "release_dates": [
                    {"certification": "", "type": 1},
                    {"certification": "NR", "type": 5},
                    {"certification": "R", "type": 3},
                ],
            },
        ]
    },
}


def test_maps_details_to_a_normalized_record() -> None:
    rec = map_details(HEAT)
    assert set(rec) == set(FIELDS)
    assert rec["id"] == 949
    assert rec["data_source"] == "tmdb"
    assert rec["director"] == "Michael Mann"
    assert rec["cast"] == [
        "Al Pacino",
        "Robert De Niro",
        "Val Kilmer",
        "Jon Voight",
        "Tom Sizemore",
        "Diane Venora",
    ]  # billing order, not the order TMDB happened to list them in
    assert rec["certification"] == "R"  # US theatrical, not the premiere or the DVD
    assert rec["keywords"] == ["robbery", "detective"]  # kept, for analysis only
    assert rec["source_material"] is None  # no allow-listed keyword: unknown
    assert rec["genres"] == ["Action", "Crime"]
    assert rec["production_companies"][2] == "Warner Bros. Pictures"
    assert (rec["budget"], rec["revenue"], rec["runtime"]) == (60000000, 187436818, 170)
    assert rec["collection"] is None
    assert rec["is_sequel"] is False
    assert rec["vote_count"] == 7049


def test_zero_budget_and_revenue_are_unknown_and_region_picks_certification() -> None:
    d = dict(
        HEAT, budget=0, revenue=0, runtime=0, title="Heat 2", belongs_to_collection={"name": "H"}
    )
    rec = map_details(d, regions=("DE",))
    assert (rec["budget"], rec["revenue"], rec["runtime"]) == (None, None, None)
    assert rec["certification"] == "16"
    assert rec["collection"] == "H"
    assert rec["is_sequel"] is True
    assert HEAT["budget"] == 60000000  # input untouched


def keywords(*names: str) -> dict[str, Any]:
    return {"keywords": [{"id": i, "name": n} for i, n in enumerate(names)]}


def test_cast_keeps_the_top_billed_in_billing_order() -> None:
    cast = [{"name": f"Actor {k}", "order": k} for k in range(25)]
    cast.reverse()
    cast.append({"name": "No Order"})  # no order: billed last
    cast.append({"name": "Null Order", "order": None})
    rec = map_details(dict(HEAT, credits={"cast": cast, "crew": []}))
    assert rec["cast"] == [f"Actor {k}" for k in range(TOP_CAST)]
    assert TOP_CAST >= 10


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("based on novel or book",), "Based on Book/Short Story"),
        (("based on novel",), "Based on Book/Short Story"),
        (("based on comic",), "Based on Comic/Graphic Novel"),
        (("based on comic book",), "Based on Comic/Graphic Novel"),
        (("based on graphic novel",), "Based on Comic/Graphic Novel"),
        (("biography",), "Based on Real Life Events"),
        (("based on true story",), "Based on Real Life Events"),
        (("remake",), "Remake"),
        (("based on video game",), "Based on Game"),
        (("based on tv series",), "Based on TV"),
        (("based on play or musical",), "Based on Play"),
        (("Based on Novel ",), "Based on Book/Short Story"),  # TMDB's case and spaces vary
        (("remake", "based on novel"), "Remake"),  # the most specific origin wins
        (("based on novel", "biography"), "Based on Real Life Events"),
    ],
)
def test_source_material_from_allow_listed_keywords(names: tuple[str, ...], expected: str) -> None:
    assert map_details(dict(HEAT, keywords=keywords(*names)))["source_material"] == expected


@pytest.mark.parametrize(
    "names",
    [
        (),
        ("duringcreditsstinger",),
        ("aftercreditsstinger", "sequel", "superhero", "musical", "fairy tale"),
        ("historical figure", "woman director", "3d"),
    ],
)
def test_keywords_outside_the_allow_list_never_set_source_material(
    names: tuple[str, ...],
) -> None:
    rec = map_details(dict(HEAT, keywords=keywords(*names)))
    assert rec["source_material"] is None
    assert rec["keywords"] == list(names)


def test_source_material_categories_are_the_samples_own() -> None:
    with gzip.open(SAMPLE) as fh:
        vocabulary = {row["Source"] for row in json.load(fh)}
    assert set(SOURCE_MATERIAL.values()) <= vocabulary
    assert set(SOURCE_PRIORITY) == set(SOURCE_MATERIAL.values())
    assert all(k == k.strip().casefold() for k in SOURCE_MATERIAL)
    assert source_material(["Original Screenplay"]) is None


def test_collection_is_its_name_and_an_empty_one_is_none() -> None:
    named = {"id": 263, "name": "The Dark Knight Collection", "poster_path": None}
    assert map_details(dict(HEAT, belongs_to_collection=named))["collection"] == (
        "The Dark Knight Collection"
    )
    for empty in ({}, {"id": 263}, {"name": ""}, {"name": None}, [], "x", 263):
        assert map_details(dict(HEAT, belongs_to_collection=empty))["collection"] is None


@pytest.mark.parametrize(
    "credits",
    [None, {}, {"cast": None, "crew": None}, {"cast": {}, "crew": "x"}, [], "none"],
)
def test_no_credits_is_no_director_and_no_cast(credits: Any) -> None:
    d = dict(HEAT, credits=credits)
    rec = map_details(d)
    assert rec["director"] is None
    assert rec["cast"] == []
    d.pop("credits")
    assert map_details(d)["cast"] == []


def test_missing_or_mistyped_fields_are_unknown_not_errors() -> None:
    d = {"id": 7}
    rec = map_details(d)
    assert set(rec) == set(FIELDS)
    assert rec["title"] == ""
    assert rec["release_date"] is None
    assert rec["genres"] == []
    assert rec["keywords"] == []
    assert rec["certification"] is None
    bad = dict(
        HEAT,
        budget="60000000",
        runtime=None,
        genres=None,
        production_companies={"name": "x"},
        keywords={"keywords": None},
        release_dates={"results": [None, {"iso_3166_1": "US", "release_dates": None}]},
        vote_count="7049",
        vote_average=None,
        popularity=float("nan"),
        original_language=None,
        imdb_id="",
    )
    rec = map_details(bad)
    assert (rec["budget"], rec["runtime"], rec["vote_count"]) == (None, None, None)
    assert rec["genres"] == []
    assert rec["production_companies"] == []
    assert rec["certification"] is None
    assert rec["popularity"] is None
    assert rec["imdb_id"] is None
    assert rec["original_language"] is None


@pytest.mark.parametrize("body", [{}, {"id": None}, {"id": "abc"}, {"id": True}])
def test_no_usable_id_is_refused_for_the_caller_to_count(body: dict[str, Any]) -> None:
    with pytest.raises((KeyError, TypeError, ValueError)):
        map_details(body)
