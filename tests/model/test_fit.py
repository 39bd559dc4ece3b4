"""The leakage guard: every reason a feature matrix would leak the outcome is named."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stages.model.fit import leakage_problems

RNG = np.random.default_rng(3)
YEAR = np.repeat(np.arange(1995, 2006), 40)
Y = RNG.integers(0, 2, len(YEAR))


def honest() -> pd.DataFrame:
    return pd.DataFrame({"log_budget": RNG.normal(16, 1, len(YEAR)), "release_year": YEAR * 1.0})


def known(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.notna()


def test_an_honest_matrix_has_no_problem() -> None:
    assert leakage_problems(honest(), Y, YEAR, known(honest())) == []


def test_a_count_of_user_contributed_metadata_is_refused() -> None:
    frame = honest().assign(n_keywords=RNG.integers(0, 30, len(YEAR)) * 1.0)
    assert leakage_problems(frame, Y, YEAR, known(frame)) == [
        "feature 'n_keywords' counts user-contributed metadata, which grows with a film's "
        "fame after release; remove it"
    ]


def test_a_feature_known_mostly_for_older_films_is_refused() -> None:
    runtime = np.where(YEAR <= 2002, 100.0, np.nan)
    frame = honest().assign(runtime=runtime)
    assert leakage_problems(frame, Y, YEAR, known(frame)) == [
        "feature input 'runtime' is known for 100% more or fewer of the last 3 years' films "
        "than of earlier ones (> 50%): its coverage is an artefact of time since release; "
        "remove it"
    ]


def test_a_post_release_field_is_refused() -> None:
    frame = honest().assign(vote_count=RNG.integers(0, 1000, len(YEAR)) * 1.0)
    assert leakage_problems(frame, Y, YEAR, known(frame)) == [
        "post-release field 'vote_count' is a feature; remove it"
    ]


def test_a_near_copy_of_the_label_is_refused() -> None:
    frame = honest().assign(hint=Y + RNG.normal(0, 0.01, len(Y)))
    (problem,) = leakage_problems(frame, Y, YEAR, known(frame))
    assert problem == (
        "feature 'hint' has |correlation| 1.000 with the label on the training set (> 0.9); "
        "it leaks the outcome, remove it"
    )
