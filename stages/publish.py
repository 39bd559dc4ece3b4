"""Command `publish`: push the pipeline's outputs to the DVC remote (S3 in production).

Not a DVC stage: it runs after `dvc repro` in the scheduled job. Run through cli.run, its
outcome reaches the Pushgateway as stage="publish", which the S3-push-failure alert watches.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
from collections.abc import Sequence

from stages.core.cli import UserError, run

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--remote", help="DVC remote name (default: the default remote)")
    args = parser.parse_args(argv)
    cmd = ["dvc", "push", *(["--remote", args.remote] if args.remote else [])]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise UserError("dvc not found on PATH; run from the project's virtualenv") from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()] or ["no output"]
        raise UserError(
            f"dvc push failed (exit {proc.returncode}): {lines[-1].strip()}; "
            "check the remote's URL and credentials, then re-run publish"
        )
    log.info("publish: %s", (proc.stdout.strip().splitlines() or ["pushed"])[-1])
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
