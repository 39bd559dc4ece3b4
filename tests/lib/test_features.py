from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pandas as pd

from stages.lib.features import INPUT_FIELDS, MovieFeatures
from stages.lib.schema import POST_RELEASE, PRE_RELEASE
from stages.prepare import PrepareParams, prepare


def frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    split = PrepareParams(2.0, dt.date(2006, 1, 1), dt.date(2011, 12, 31), 10_000)
    out = prepare(records, split)
    return pd.concat([out.train, out.test], ignore_index=True)


def test_reads_only_pre_release_fields() -> None:
    assert set(INPUT_FIELDS) <= set(PRE_RELEASE)
    assert not set(INPUT_FIELDS) & POST_RELEASE


def test_output_does_not_change_with_post_release_fields(
    records: Callable[..., list[dict[str, Any]]],
) -> None:
    df = frame(records())
    feats = MovieFeatures(top_k=5, min_count=2).fit(df)
    shuffled = df.assign(
        revenue=df["revenue"].sample(frac=1, random_state=1).to_numpy(),
        vote_count=0,
        vote_average=0.0,
    )
    pd.testing.assert_frame_equal(feats.transform(df), feats.transform(shuffled))


def test_unseen_category_maps_to_other(records: Callable[..., list[dict[str, Any]]]) -> None:
    df = frame(records())
    feats = MovieFeatures(top_k=5, min_count=2).fit(df)
    row = df.head(1).assign(certification="NC-17")
    assert feats.transform(row)["certification"].iloc[0] == "__other__"
