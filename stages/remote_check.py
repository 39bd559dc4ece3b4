"""Command `remote_check`: say in one line what is wrong with the S3 remote before DVC does.

`dvc push`/`dvc pull` report missing credentials or an unreachable endpoint in ways that are
hard to act on (a long traceback or a generic "failed to push"). CI and `make push`/`make pull`
run this first: it reads the DVC config (including `.dvc/config.local`), checks that the bucket
placeholder was replaced, that credentials are present (naming the missing variable), that the
endpoint answers, and that the bucket can be reached with those credentials.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from stages.core.cli import UserError, run

log = logging.getLogger(__name__)

PLACEHOLDER = "CHANGE-ME"


def remote_config(root: Path, name: str | None) -> tuple[str, dict[str, Any]]:
    """The named (or default) remote's merged settings: .dvc/config + config.local + global."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        config = repo.config
        name = name or config["core"].get("remote")
        if not name:
            raise UserError("no default DVC remote; run `dvc remote add -d storage s3://BUCKET/P`")
        remotes = config["remote"]
        if name not in remotes:
            raise UserError(f"DVC remote '{name}' is not configured; see `dvc remote list`")
        return name, dict(remotes[name])


def missing_credentials(env: Mapping[str, str], remote: Mapping[str, Any]) -> str | None:
    """Why no credentials can be found, naming the variable to set; None if some are present."""
    if remote.get("access_key_id") or remote.get("profile") or remote.get("credentialpath"):
        if remote.get("access_key_id") and not remote.get("secret_access_key"):
            return "the remote has access_key_id but no secret_access_key"
        return None
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if key and not secret:
        return "AWS_SECRET_ACCESS_KEY is not set (AWS_ACCESS_KEY_ID is)"
    if secret and not key:
        return "AWS_ACCESS_KEY_ID is not set (AWS_SECRET_ACCESS_KEY is)"
    if key and secret:
        return None
    if env.get("AWS_PROFILE") or env.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        return None
    if env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") or env.get(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI"
    ):
        return None
    creds_file = Path(env.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")).expanduser()
    if creds_file.is_file():
        return None
    return (
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (nor AWS_PROFILE, a web "
        "identity token or ~/.aws/credentials)"
    )


def check_endpoint(url: str, timeout: float) -> str | None:
    """None if a TCP connection to the endpoint opens, else why not."""
    parsed = urlparse(url)
    host = parsed.hostname
    if not host or parsed.scheme not in {"http", "https"}:
        return f"endpointurl {url!r} is not an http(s) URL"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"cannot connect to endpoint {url} ({exc.strerror or exc})"


def check_bucket(url: str, remote: Mapping[str, Any], timeout: float) -> str | None:
    """None if the bucket answers HEAD with these credentials, else the reason."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    parsed = urlparse(url)
    session = boto3.Session(
        profile_name=remote.get("profile"),
        aws_access_key_id=remote.get("access_key_id"),
        aws_secret_access_key=remote.get("secret_access_key"),
        region_name=remote.get("region"),
    )
    client = session.client(
        "s3",
        endpoint_url=remote.get("endpointurl"),
        config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}),
    )
    try:
        client.head_bucket(Bucket=parsed.netloc)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        if code in {"404", "NoSuchBucket"}:
            return f"bucket '{parsed.netloc}' does not exist at this endpoint; create it"
        if code in {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
            return f"the credentials were refused for bucket '{parsed.netloc}' ({code})"
        return f"bucket '{parsed.netloc}' answered {code}"
    except BotoCoreError as exc:
        return f"cannot reach bucket '{parsed.netloc}': {exc}"
    return None


def check(
    root: Path, name: str | None, env: Mapping[str, str], timeout: float = 3.0
) -> tuple[str, str]:
    """Raise UserError with one actionable line on the first problem; else (name, url)."""
    name, remote = remote_config(root, name)
    url = str(remote.get("url", ""))
    fix_local = f"`dvc remote modify --local {name}"
    if not url.startswith("s3://"):
        log.info("remote %s is not S3 (%s): nothing to check", name, url)
        return name, url
    if PLACEHOLDER in url:
        raise UserError(
            f"DVC remote '{name}' still points at the placeholder {url}; "
            f"set your bucket: {fix_local} url s3://BUCKET/PREFIX`"
        )
    why = missing_credentials(env, remote)
    if why:
        raise UserError(
            f"no AWS credentials for DVC remote '{name}': {why}; export them, or "
            f"{fix_local} profile NAME`"
        )
    endpoint = (
        remote.get("endpointurl") or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    )
    if endpoint:
        why = check_endpoint(str(endpoint), timeout)
        if why:
            raise UserError(f"DVC remote '{name}': {why}; fix it with {fix_local} endpointurl URL`")
    why = check_bucket(url, {**remote, "endpointurl": endpoint}, timeout)
    if why:
        raise UserError(f"DVC remote '{name}' ({url}): {why}")
    return name, url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--remote", help="remote name (default: the default remote)")
    parser.add_argument("--repo", type=Path, default=Path("."))
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per network check")
    args = parser.parse_args(argv)
    name, url = check(args.repo, args.remote, os.environ, args.timeout)
    log.info("remote %s (%s): reachable with the configured credentials", name, url)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
