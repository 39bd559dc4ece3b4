"""Credentials come from the environment and never show."""

from __future__ import annotations

from stages.sources.tmdb.credentials import Credentials
from tests.sources.tmdb.conftest import SECRET


def test_credentials_come_from_env_and_never_show() -> None:
    assert Credentials.from_env({}) is None
    c = Credentials.from_env({"TMDB_API_KEY": "k1", "TMDB_API_TOKEN": SECRET})
    assert c is not None
    assert c.token == SECRET
    assert c.api_key is None
    assert c.base_url == "https://api.themoviedb.org/3"
    assert SECRET not in repr(c)
    c = Credentials.from_env({"TMDB_API_KEY": "k1", "TMDB_API_BASE_URL": "http://x/3/"})
    assert c is not None
    assert c.api_key == "k1"
    assert c.base_url == "http://x/3"
