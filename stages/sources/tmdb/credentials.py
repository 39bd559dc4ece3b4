"""TMDB credentials: read from the environment only, and kept out of every log line."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from stages.core.cli import UserError

DEFAULT_BASE_URL = "https://api.themoviedb.org/3"


@dataclass(frozen=True)
class Credentials:
    """How to authenticate; repr never shows the secret."""

    base_url: str
    token: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)

    @property
    def secret(self) -> str:
        """The one value that must never be written anywhere (empty if there is none)."""
        return self.token or self.api_key or ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Credentials | None:
        """TMDB_API_TOKEN or TMDB_API_KEY (and TMDB_API_BASE_URL); None when neither is set."""
        token = env.get("TMDB_API_TOKEN", "").strip() or None
        key = env.get("TMDB_API_KEY", "").strip() or None
        base = env.get("TMDB_API_BASE_URL", "").strip() or DEFAULT_BASE_URL
        if token is None and key is None:
            return None
        check_base_url(base)
        # A token wins: it travels in a header, never in a URL that could end up in a log.
        return cls(base_url=base.rstrip("/"), token=token, api_key=None if token else key)


def check_base_url(url: str) -> None:
    """A UserError unless `url` is an absolute http(s) URL with a host (and a valid port)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port out of range or not a number)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(
            f"TMDB_API_BASE_URL {url!r} is not an http(s) URL with a host; set it like "
            f"{DEFAULT_BASE_URL} or unset it"
        )


class RedactingFilter(logging.Filter):
    """Defence in depth: replace the secret in any log record, whoever formats it."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secret:
            msg = record.getMessage()
            if self.secret in msg:
                record.msg = msg.replace(self.secret, "***")
                record.args = None
        return True
