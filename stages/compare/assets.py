"""Command `python -m stages.compare.assets`: the report with its local files as links to the
workflow run's artifact, for places that must not upload them (a private repository's plots
would get public URLs on CML's asset host).

`cml comment` uploads every local image and linked file it finds in the markdown; GitHub's job
summary and `gh pr create --body-file` show none of them. This rewrites `![alt](file)` and
`[text](file)` (relative targets only) into links to the artifact, so the text carries no local
reference at all and nothing is uploaded.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path

from stages.core.cli import run
from stages.core.io import write_text

LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def is_local(target: str) -> bool:
    """A relative file reference (not a URL, an anchor or an absolute path)."""
    return not re.match(r"^([a-z][a-z0-9+.-]*:|#|/)", target, re.IGNORECASE)


def link_assets(markdown: str, url: str | None) -> str:
    """Every local image or link in `markdown` as a link to the artifact at `url` (or, without
    a URL, the file's name in the run's `report` artifact, as plain text)."""

    def swap(m: re.Match[str]) -> str:
        bang, text, target = m.groups()
        if not is_local(target):
            return m.group(0)
        what = f"{text or target} (`{target}`" + (", image" if bang else "") + ")"
        if url:
            return f"[{what} in the report artifact]({url})"
        return f"{what} in the workflow run's `report` artifact"

    return LINK.sub(swap, markdown)


def local_refs(markdown: str) -> list[str]:
    """The local files `markdown` references (what `cml comment` would upload)."""
    return [t for _, _, t in LINK.findall(markdown) if is_local(t)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("markdown", type=Path, help="the report with local references")
    parser.add_argument("--url", default="", help="the artifact's URL (upload-artifact output)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    text = args.markdown.read_text(encoding="utf-8")
    write_text(args.out, link_assets(text, args.url or None))
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, push_metrics=False))
