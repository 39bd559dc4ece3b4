"""Moving the data snapshot's end date in params.yaml text, as a retrain does before a repro.

Edited as text, not re-dumped YAML, so comments, quoting and key order stay as written and the
commit shows one changed line.
"""

from __future__ import annotations

import datetime as dt
import re

from stages.core.cli import UserError

_LTE = re.compile(
    r"^(?P<indent>[ \t]+)release_date_lte:(?P<ws>[ \t]*)(?P<value>[^#\n]*?)(?P<rest>[ \t]*(#.*)?)$"
)


def set_release_date_lte(text: str, day: dt.date) -> str:
    """params.yaml text with collect.release_date_lte set to `day`, every other byte kept."""
    lines = text.splitlines(keepends=True)
    in_collect = False
    for i, line in enumerate(lines):
        if re.match(r"^\S", line):
            in_collect = line.startswith("collect:")
            continue
        m = _LTE.match(line.rstrip("\n"))
        if in_collect and m:
            eol = line[len(line.rstrip("\r\n")) :]
            ws = m["ws"] or " "
            lines[i] = f'{m["indent"]}release_date_lte:{ws}"{day.isoformat()}"{m["rest"]}{eol}'
            return "".join(lines)
    raise UserError(
        "params.yaml: collect.release_date_lte not found; add it to the collect section"
    )
