"""TMDB movie JSON to the normalized record."""

from __future__ import annotations

from typing import Any

from stages.core.schema import FIELDS
from stages.sources.tmdb.mapping import map_details

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
    ]
    assert rec["certification"] == "R"  # US theatrical, not the premiere or the DVD
    assert rec["keywords"] == ["robbery", "detective"]
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
