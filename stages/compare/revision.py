"""The base revision in git: resolved to a commit, fetched once where the clone is shallow."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from stages.core.cli import UserError

log = logging.getLogger(__name__)


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """git in `root`, output captured; callers decide what a non-zero exit means."""
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)


def resolve_rev(root: Path, base: str, fetch: bool = True) -> str:
    """The commit of `base`; in a shallow clone fetch it once, else fail with the fix."""
    for candidate in (base, f"origin/{base}"):
        proc = _git(root, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}")
        if proc.returncode == 0:
            return proc.stdout.strip()
    if fetch:
        log.info("base %s is not in this clone; fetching it from origin", base)
        proc = _git(root, "fetch", "--quiet", "--no-tags", "--depth=1", "origin", base)
        if proc.returncode == 0:
            return _git(root, "rev-parse", "FETCH_HEAD").stdout.strip()
    raise UserError(
        f"base revision '{base}' is not in this clone (shallow?) and could not be fetched; "
        f"run `git fetch --depth=1 origin {base}` (or check out with fetch-depth: 0)"
    )


def short(root: Path, rev: str) -> str:
    """The abbreviated sha for labels, so a reader can tell which commit was the base."""
    return _git(root, "rev-parse", "--short", rev).stdout.strip() or rev[:8]
