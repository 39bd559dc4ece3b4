"""Plain helpers for the tests and the benchmarks: child environments, commands, project copies.

No pytest here (the fixtures are in tests/conftest.py), so bench/ imports it without pulling in
the test suite's configuration.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def tool_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for child processes: our venv first, no analytics, a fixed git identity."""
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        DVC_NO_ANALYTICS="1",
        GIT_AUTHOR_NAME="Test",
        GIT_AUTHOR_EMAIL="test@example.invalid",
        GIT_COMMITTER_NAME="Test",
        GIT_COMMITTER_EMAIL="test@example.invalid",
        GIT_CONFIG_NOSYSTEM="1",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra or {})
    return env


def sh(
    *cmd: str | Path, cwd: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command with `tool_env`, output captured; with `check`, a failure shows its output."""
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env or tool_env(), capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def project_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files: the project as the developer sees it."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(p for p in out.split("\0") if p and (ROOT / p).is_file())


def copy_project(dest: Path) -> Path:
    """Copy `project_files` to `dest`: a project without caches, outputs or local settings."""
    for rel in project_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    return dest


def aws_env(**extra: str) -> dict[str, str]:
    """Child env with fake AWS credentials and no instance-metadata lookups (loopback only)."""
    env = tool_env()
    for key in [k for k in env if k.startswith("AWS_")]:
        del env[key]
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/nonexistent/aws-config",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent/aws-credentials",
    )
    env.update(extra)
    return env


def make_bucket(endpoint: str, name: str) -> None:
    """Create bucket `name` on the S3 server at `endpoint` with the fake credentials."""
    import boto3

    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=name)


def use_s3_remote(repo: Path, endpoint: str, bucket: str, prefix: str = "store") -> None:
    """Point the repo's default remote `storage` at the test bucket, locally (config.local)."""
    sh("dvc", "remote", "modify", "--local", "storage", "url", f"s3://{bucket}/{prefix}", cwd=repo)
    sh("dvc", "remote", "modify", "--local", "storage", "endpointurl", endpoint, cwd=repo)
