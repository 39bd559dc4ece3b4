"""The request rate limiter: TMDB must never see more than `rate` requests in one second."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator


class RateLimiter:
    """At most `rate` requests in any 1-second window, as the *server* sees them.

    A sliding log of request slots. A slot counts from the moment the request may be sent
    until one second after its answer came back (while in flight it always counts). The
    server receives each request between those two moments, so whatever the network or
    scheduling jitter, any N + 1 requests the server sees lie more than 1 s apart.
    Thread-safe; `pause(s)` blocks every caller (used when the server answers 429).
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.max_in_window = max(1, math.floor(rate))
        # Below 1 request/s, one request per 1/rate seconds.
        self.window_s = max(1.0, self.max_in_window / rate)
        self._clock = clock
        self._ends: dict[int, float] = {}  # slot -> answer time + window (inf while in flight)
        self._next = 0
        self._cond = threading.Condition()
        self._paused_until = 0.0

    def acquire(self) -> int:
        """Block until a slot is free; return it (give it back with release())."""
        with self._cond:
            while True:
                now = self._clock()
                if now < self._paused_until:
                    self._cond.wait(self._paused_until - now)
                    continue
                for slot in [k for k, end in self._ends.items() if end <= now]:
                    del self._ends[slot]
                if len(self._ends) < self.max_in_window:
                    self._next += 1
                    self._ends[self._next] = math.inf
                    return self._next
                soonest = min(self._ends.values())
                self._cond.wait(None if soonest == math.inf else max(soonest - now, 0.0005))

    def release(self, slot: int) -> None:
        """The answer is in: the slot stays taken for one more window, then frees."""
        with self._cond:
            self._ends[slot] = self._clock() + self.window_s
            self._cond.notify_all()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot for the duration of one request, released even if it fails."""
        token = self.acquire()
        try:
            yield
        finally:
            self.release(token)

    def pause(self, seconds: float) -> None:
        """Hold back every caller for `seconds` (a 429's Retry-After applies to all threads)."""
        with self._cond:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
