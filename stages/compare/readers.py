"""The two sides' files: a git revision through DVC, and the workspace on disk.

Both satisfy `stages.compare.snapshot.Reader`, so one function builds either side's snapshot.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dvc.api import DVCFileSystem


class RevReader:
    """Reads files of one revision through DVC: git-tracked files and DVC outputs alike.

    `DVCFileSystem` at that revision looks in the local cache first, then the remote, so the
    base needs no checkout.
    """

    def __init__(self, root: Path, rev: str) -> None:
        from dvc.api import DVCFileSystem  # heavy import, only when a base is read

        self.fs: DVCFileSystem = DVCFileSystem(str(root), rev=rev)
        self.rev = rev
        self.notes: list[str] = []

    def read(self, path: str) -> str | None:
        """The file's text, or None if the revision has no such file or its data is not found."""
        from dvc.exceptions import DvcException

        try:
            if not self.fs.exists(path):
                return None
            text: str = self.fs.read_text(path, encoding="utf-8")
            return text
        except (FileNotFoundError, DvcException) as exc:
            # An output in dvc.lock whose data is in neither the local cache nor the remote.
            self.notes.append(
                f"base `{path}` could not be read ({type(exc).__name__}); "
                "was it pushed? (`dvc push` on the base branch)"
            )
            return None

    def pngs(self, folder: str) -> list[str]:
        """Names of the PNGs in `folder`; none where the folder or its data is missing."""
        from dvc.exceptions import DvcException

        try:
            if not self.fs.isdir(folder):
                return []
            return sorted(Path(p).name for p in self.fs.glob(f"{folder}/*.png"))
        except (FileNotFoundError, DvcException):
            return []

    def copy(self, path: str, dest: Path) -> None:
        """Copy one file of the revision to `dest` (plots go beside the report)."""
        self.fs.get_file(path, str(dest))


class WorkspaceReader:
    """Reads files of the working tree under `root`: the head side, as `dvc repro` left it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.notes: list[str] = []

    def read(self, path: str) -> str | None:
        """The file's text, or None if there is no such file."""
        p = self.root / path
        return p.read_text(encoding="utf-8") if p.is_file() else None

    def pngs(self, folder: str) -> list[str]:
        """Names of the PNGs in `folder`; none where there is no such folder."""
        plots_dir = self.root / folder
        return sorted(p.name for p in plots_dir.glob("*.png")) if plots_dir.is_dir() else []

    def copy(self, path: str, dest: Path) -> None:
        """Copy one file of the workspace to `dest`."""
        shutil.copyfile(self.root / path, dest)
