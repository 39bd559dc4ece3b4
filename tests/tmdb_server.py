"""A local HTTP server speaking the parts of TMDB API v3 the collector uses, with faults.

Real HTTP on 127.0.0.1 (ThreadingHTTPServer, port 0): /discover/movie (20 a page, 400 beyond
`max_pages`), /movie/{id} with append_to_response, /movie/changes (at most 14 days), bearer or
api_key auth. Films are generated deterministically from their id, shaped like TMDB's own,
or, with `FakeTmdb.from_jsonl(path)`, served as stored: each line the object
`/movie/{id}?append_to_response=credits,keywords,release_dates` returned (e.g. the real films of
../shared/data/tmdb-dev.jsonl.gz), the appended parts only when asked for.
Every request is logged with its arrival time so tests can check the client's rate limit.
"""

from __future__ import annotations

import bisect
import datetime as dt
import gzip
import json
import math
import random
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

GENRES = [
    (28, "Action"),
    (12, "Adventure"),
    (16, "Animation"),
    (35, "Comedy"),
    (80, "Crime"),
    (99, "Documentary"),
    (18, "Drama"),
    (10751, "Family"),
    (14, "Fantasy"),
    (27, "Horror"),
    (9648, "Mystery"),
    (10749, "Romance"),
    (878, "Science Fiction"),
    (53, "Thriller"),
]
LANGS = ["en"] * 12 + ["fr", "fr", "es", "ja", "de", "it", "ko", "hi"]
WORDS = [
    "night",
    "city",
    "last",
    "river",
    "dark",
    "summer",
    "blood",
    "love",
    "king",
    "house",
    "road",
    "secret",
    "star",
    "war",
]
COMPANIES = ["Warner Bros. Pictures", "Universal Pictures", "Paramount", "Canal+", "Toho", "A24"]
APPENDABLE = ("credits", "keywords", "release_dates")  # append_to_response parts we serve
CERTS = ["G", "PG", "PG-13", "R", "NC-17"]
KEYWORDS = ["based on novel or book", "sequel", "heist", "new york city", "revenge", "biography"]
PEOPLE = [
    "Ann",
    "Bo",
    "Cy",
    "Di",
    "Ed",
    "Fay",
    "Gus",
    "Hal",
    "Ivy",
    "Jo",
    "Kit",
    "Lu",
    "Max",
    "Ned",
    "Oz",
    "Pia",
    "Quin",
    "Ray",
    "Sue",
    "Tom",
]


@dataclass(frozen=True)
class Film:
    id: int
    release_date: str
    adult: bool
    language: str
    countries: tuple[str, ...]


def make_catalog(n: int, start: str, end: str, seed: int = 1, first_id: int = 100) -> list[Film]:
    """n films spread over [start, end], ids first_id.., a few adult, several languages."""
    rng = random.Random(seed)
    d0 = dt.date.fromisoformat(start)
    span = (dt.date.fromisoformat(end) - d0).days + 1
    films = []
    for i in range(n):
        date = d0 + dt.timedelta(days=rng.randrange(span))
        films.append(
            Film(
                id=first_id + i * 3 + rng.randrange(3),
                release_date=date.isoformat(),
                adult=rng.random() < 0.03,
                language=rng.choice(LANGS),
                countries=tuple(sorted({"US", rng.choice(["FR", "GB", "DE", "JP"])})),
            )
        )
    return films


def movie_details(film: Film, version: int, append: Iterable[str]) -> dict[str, Any]:
    """The /movie/{id} body for a film, deterministic in (id, version)."""
    rng = random.Random(film.id)
    title = " ".join(rng.choice(WORDS).title() for _ in range(1 + rng.randrange(3)))
    if rng.random() < 0.1:
        title += " 2"
    if version:
        title += f" (v{version})"
    budget = 0 if rng.random() < 0.5 else rng.randrange(1, 200) * 1_000_000
    revenue = 0 if rng.random() < 0.55 else int(rng.lognormvariate(17, 1.5))
    body: dict[str, Any] = {
        "adult": film.adult,
        "backdrop_path": f"/b{film.id}.jpg",
        "belongs_to_collection": (
            {"id": 9000 + film.id, "name": f"{title} Collection", "poster_path": None}
            if rng.random() < 0.15
            else None
        ),
        "budget": budget,
        "genres": [{"id": g, "name": n} for g, n in rng.sample(GENRES, 1 + rng.randrange(3))],
        "homepage": "",
        "id": film.id,
        "imdb_id": f"tt{1000000 + film.id:07d}",
        "original_language": film.language,
        "original_title": title,
        "overview": "A film.",
        "popularity": round(rng.random() * 50, 3),
        "poster_path": f"/p{film.id}.jpg",
        "production_companies": [
            {"id": 1 + i, "name": c, "origin_country": "US"}
            for i, c in enumerate(rng.sample(COMPANIES, rng.randrange(3)))
        ],
        "production_countries": [{"iso_3166_1": c, "name": c} for c in film.countries],
        "release_date": film.release_date,
        "revenue": revenue,
        "runtime": rng.choice([0, *range(80, 180)]),
        "spoken_languages": [{"iso_639_1": film.language, "name": film.language}],
        "status": "Released",
        "tagline": "",
        "title": title,
        "video": False,
        "vote_average": round(rng.random() * 10, 3),
        "vote_count": rng.randrange(5000),
    }
    append = set(append)
    if "credits" in append:
        cast = [
            {"id": j, "name": f"{rng.choice(PEOPLE)} Actor{j}", "character": "x", "order": j}
            for j in range(rng.randrange(3, 12))
        ]
        rng.shuffle(cast)  # TMDB lists cast by order, but the client must not rely on it
        crew = [
            {"id": 500, "name": f"{rng.choice(PEOPLE)} Writer", "job": "Screenplay"},
            {"id": 501, "name": f"{rng.choice(PEOPLE)} Director", "job": "Director"},
            {"id": 502, "name": "P. Roducer", "job": "Producer"},
        ]
        body["credits"] = {"cast": cast, "crew": crew}
    if "keywords" in append:
        body["keywords"] = {
            "keywords": [{"id": i, "name": k} for i, k in enumerate(rng.sample(KEYWORDS, 2))]
        }
    if "release_dates" in append:
        cert = rng.choice(CERTS)
        body["release_dates"] = {
            "results": [
                {
                    "iso_3166_1": c,
                    "release_dates": [
                        {"certification": "", "type": 1, "release_date": film.release_date},
                        {
                            "certification": cert if c == "US" else "12",
                            "type": 3,
                            "release_date": film.release_date,
                        },
                    ],
                }
                for c in film.countries
            ]
        }
    return body


@dataclass
class Faults:
    """Switchable faults; probabilities apply to matching requests, drawn from a seeded RNG."""

    kinds: tuple[str, ...] = ("details",)  # which endpoints the probabilistic faults hit
    p_429: float = 0.0
    p_500: float = 0.0
    p_slow: float = 0.0
    p_malformed: float = 0.0
    p_truncated: float = 0.0
    slow_s: float = 2.0
    retry_after: str = "1"
    burst_429: int = 0  # the next N requests (any endpoint) answer 429
    always_malformed: set[int] = field(default_factory=set)  # these ids never answer valid JSON
    unauthorized: bool = False


class FakeTmdb:
    """The server. Start with `with FakeTmdb(...) as tmdb:`; `tmdb.url` is the base URL."""

    def __init__(
        self,
        films: list[Film],
        secret: str,
        latency_s: float = 0.0,
        max_pages: int = 500,
        missing: Iterable[int] = (),
        busy_day: tuple[str, int] | None = None,
        seed: int = 7,
        objects: Mapping[int, dict[str, Any]] | None = None,
    ) -> None:
        self.secret = secret
        self.latency_s = latency_s
        self.max_pages = max_pages
        self.missing = set(missing)
        self.faults = Faults()
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        self.log: list[tuple[float, str, dict[str, str]]] = []
        self.versions: dict[int, int] = {}
        self.changes: list[tuple[str, int]] = []
        self.sent_429 = 0
        # Stored /movie/{id} objects (from_jsonl) served instead of generated ones, and the
        # fields change(..., edit=...) overrides in them.
        self.objects = dict(objects) if objects is not None else None
        self.edits: dict[int, dict[str, Any]] = {}
        films = list(films)
        if busy_day is not None:  # a synthetic day with more films than one query can page
            day, count = busy_day
            films += [Film(50_000_000 + i, day, False, "en", ("US",)) for i in range(count)]
        self.films = sorted(films, key=lambda f: (f.release_date, f.id))
        self.dates = [f.release_date for f in self.films]
        self.by_id = {f.id: f for f in self.films}
        self._cache: dict[tuple[Any, ...], list[Film]] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}/3"

    def __enter__(self) -> FakeTmdb:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @classmethod
    def from_jsonl(cls, path: Path | str, secret: str, **kwargs: Any) -> FakeTmdb:
        """A server for the stored TMDB objects of a JSONL file (gzip if it ends in .gz).

        Discover lists the films that have a release date, by it; details answer the object.
        """
        path = Path(path)
        opener = gzip.open if path.suffix == ".gz" else open
        objects: dict[int, dict[str, Any]] = {}
        with opener(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    obj = json.loads(line)
                    objects[int(obj["id"])] = obj
        films = [
            Film(
                id=i,
                release_date=str(o["release_date"]),
                adult=bool(o.get("adult")),
                language=str(o.get("original_language") or ""),
                countries=tuple(
                    sorted(
                        str(c["iso_3166_1"])
                        for c in o.get("production_countries") or []
                        if isinstance(c, dict) and c.get("iso_3166_1")
                    )
                ),
            )
            for i, o in objects.items()
            if o.get("release_date")
        ]
        return cls(films, secret, objects=objects, **kwargs)

    # ---- test helpers
    def change(
        self, ids: Iterable[int], day: str | None = None, edit: Mapping[str, Any] | None = None
    ) -> None:
        """Edit films and list them in /movie/changes for `day` (default: today, UTC).

        A generated film's title gains a version; a stored object takes the fields of `edit`
        (e.g. a corrected revenue), or stays as it is without one.
        """
        day = day or dt.datetime.now(dt.UTC).date().isoformat()
        with self.lock:
            for i in ids:
                self.versions[i] = self.versions.get(i, 0) + 1
                if edit:
                    self.edits.setdefault(i, {}).update(edit)
                self.changes.append((day, i))

    def requests(self, kind: str | None = None) -> list[tuple[float, str, dict[str, str]]]:
        with self.lock:
            return [r for r in self.log if kind is None or _kind(r[1]) == kind]

    def detail_ids(self) -> list[int]:
        return [int(p.rsplit("/", 1)[1]) for _, p, _ in self.requests("details")]

    def max_in_window(self, window_s: float = 1.0) -> int:
        return max_in_window([t for t, _, _ in self.requests()], window_s)

    def in_range(self, gte: str, lte: str, include_adult: bool = False) -> list[Film]:
        return [
            f for f in self.films if gte <= f.release_date <= lte and (include_adult or not f.adult)
        ]

    # ---- API
    def discover(self, q: dict[str, str]) -> tuple[int, dict[str, Any]]:
        page = int(q.get("page", "1"))
        if page < 1 or page > self.max_pages:
            return 400, {
                "status_code": 22,
                "status_message": f"Invalid page: Pages start at 1 and max at {self.max_pages}.",
                "success": False,
            }
        gte = q.get("primary_release_date.gte", "0000-00-00")
        lte = q.get("primary_release_date.lte", "9999-99-99")
        adult = q.get("include_adult", "false") == "true"
        lang, region = q.get("with_original_language"), q.get("region")
        key = (gte, lte, adult, lang, region)
        with self.lock:
            films = self._cache.get(key)
        if films is None:
            lo, hi = bisect.bisect_left(self.dates, gte), bisect.bisect_right(self.dates, lte)
            films = [
                f
                for f in self.films[lo:hi]
                if (adult or not f.adult)
                and (lang is None or f.language == lang)
                and (region is None or region in f.countries)
            ]
            with self.lock:
                self._cache[key] = films
        total = len(films)
        chunk = films[(page - 1) * 20 : page * 20]
        return 200, {
            "page": page,
            "results": [
                {
                    "adult": f.adult,
                    "id": f.id,
                    "original_language": f.language,
                    "release_date": f.release_date,
                    "title": f"Film {f.id}",
                    "video": False,
                }
                for f in chunk
            ],
            "total_pages": math.ceil(total / 20),
            "total_results": total,
        }

    def details(self, movie_id: int, q: dict[str, str]) -> tuple[int, dict[str, Any]]:
        film = self.by_id.get(movie_id)
        if self.objects is not None and movie_id in self.objects:
            film = film or Film(movie_id, "", False, "", ())  # no release date: not listed
        if film is None or movie_id in self.missing:
            return 404, {
                "status_code": 34,
                "status_message": "The resource you requested could not be found.",
                "success": False,
            }
        append = [a for a in q.get("append_to_response", "").split(",") if a]
        with self.lock:
            version = self.versions.get(movie_id, 0)
            edit = dict(self.edits.get(movie_id, {}))
        if self.objects is None:
            return 200, movie_details(film, version, append)
        stored = self.objects[movie_id]
        body = {k: v for k, v in stored.items() if k not in APPENDABLE or k in append}
        return 200, {**body, **edit}

    def movie_changes(self, q: dict[str, str]) -> tuple[int, dict[str, Any]]:
        today = dt.datetime.now(dt.UTC).date()
        end = dt.date.fromisoformat(q.get("end_date", today.isoformat()))
        start = dt.date.fromisoformat(q.get("start_date", (end - dt.timedelta(1)).isoformat()))
        if (end - start).days > 14:
            return 422, {
                "status_code": 20,
                "status_message": "Invalid date range: Should be a range no longer than 14 days.",
                "success": False,
            }
        with self.lock:
            ids = sorted({i for d, i in self.changes if start.isoformat() <= d <= end.isoformat()})
        page = int(q.get("page", "1"))
        return 200, {
            "page": page,
            "results": [{"adult": False, "id": i} for i in ids[(page - 1) * 100 : page * 100]],
            "total_pages": max(1, math.ceil(len(ids) / 100)),
            "total_results": len(ids),
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                arrived = time.monotonic()
                parts = urlsplit(self.path)
                q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                path = parts.path.removeprefix("/3")
                with fake.lock:
                    fake.log.append((arrived, path, {k: v for k, v in q.items()}))
                try:
                    self.answer(path, q)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def answer(self, path: str, q: dict[str, str]) -> None:
                f = fake.faults
                auth = self.headers.get("Authorization", "")
                if f.unauthorized or (
                    auth != f"Bearer {fake.secret}" and q.get("api_key") != fake.secret
                ):
                    body = {
                        "status_code": 7,
                        "status_message": "Invalid API key: You must be granted a valid key.",
                        "success": False,
                    }
                    return self.send(401, json.dumps(body).encode())
                if fake.latency_s:
                    time.sleep(fake.latency_s)
                kind = _kind(path)
                with fake.lock:
                    if f.burst_429 > 0:
                        f.burst_429 -= 1
                        fault = "429"
                    elif kind in f.kinds:
                        r = fake.rng.random()
                        fault = "none"
                        for name, p in (
                            ("429", f.p_429),
                            ("500", f.p_500),
                            ("slow", f.p_slow),
                            ("malformed", f.p_malformed),
                            ("truncated", f.p_truncated),
                        ):
                            if r < p:
                                fault = name
                                break
                            r -= p
                    else:
                        fault = "none"
                if kind == "details" and int(path.rsplit("/", 1)[1]) in f.always_malformed:
                    fault = "malformed"
                if fault == "429":
                    with fake.lock:
                        fake.sent_429 += 1
                    body = {
                        "status_code": 25,
                        "status_message": "Your request count is over the allowed limit.",
                        "success": False,
                    }
                    return self.send(429, json.dumps(body).encode(), {"Retry-After": f.retry_after})
                if fault == "500":
                    return self.send(
                        500, b'{"status_code": 11, "status_message": "Internal error."}'
                    )
                if fault == "slow":
                    time.sleep(f.slow_s)
                if kind == "discover":
                    status, data = fake.discover(q)
                elif kind == "changes":
                    status, data = fake.movie_changes(q)
                elif kind == "details":
                    status, data = fake.details(int(path.rsplit("/", 1)[1]), q)
                else:
                    status, data = 404, {"status_code": 34, "success": False}
                raw = json.dumps(data).encode()
                if status == 200 and fault == "malformed":
                    return self.send(200, raw[: len(raw) // 2])
                if status == 200 and fault == "truncated":
                    # Announce the whole body, send half, hang up.
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json;charset=utf-8")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw[: len(raw) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                return self.send(status, raw)

        return Handler


def max_in_window(times: list[float], window_s: float = 1.0) -> int:
    """The most arrivals in any `window_s`-second window: what a rate limit must bound."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _kind(path: str) -> str:
    if path == "/discover/movie":
        return "discover"
    if path == "/movie/changes":
        return "changes"
    if path.startswith("/movie/") and path.rsplit("/", 1)[1].isdigit():
        return "details"
    return "other"
