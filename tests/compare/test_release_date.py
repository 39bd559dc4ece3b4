"""Moving collect.release_date_lte in params.yaml text."""

from __future__ import annotations

import datetime as dt

import pytest

from stages.compare.release_date import set_release_date_lte as set_lte
from stages.core.cli import UserError
from tests.support import ROOT


def test_date_edit_keeps_every_other_byte() -> None:
    text = (ROOT / "params.yaml").read_text()
    new = set_lte(text, dt.date(2026, 11, 28))
    old_lines, new_lines = text.splitlines(), new.splitlines()
    changed = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    assert len(changed) == 1
    assert changed[0][1].strip().startswith('release_date_lte: "2026-11-28"')
    assert set_lte(new, dt.date(2026, 11, 28)) == new


def test_date_edit_only_in_collect_and_keeps_comment() -> None:
    text = 'other:\n  release_date_lte: "x"\ncollect:\n  release_date_lte: 2010-01-01  # end\n'
    assert set_lte(text, dt.date(2011, 2, 3)) == (
        'other:\n  release_date_lte: "x"\ncollect:\n  release_date_lte: "2011-02-03"  # end\n'
    )
    with pytest.raises(UserError, match=r"collect.release_date_lte not found"):
        set_lte("collect:\n  source: x\n", dt.date(2011, 2, 3))
