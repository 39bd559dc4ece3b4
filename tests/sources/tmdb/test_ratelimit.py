"""The rate limiter, on a fake clock and across real threads."""

from __future__ import annotations

import threading
import time

from stages.sources.tmdb.ratelimit import RateLimiter
from tests.tmdb_server import max_in_window


def test_limiter_counts_a_slot_until_one_second_after_the_answer() -> None:
    now = [0.0]
    lim = RateLimiter(3, clock=lambda: now[0])
    slots = [lim.acquire() for _ in range(3)]
    got: list[float] = []
    waiter = threading.Thread(target=lambda: (lim.acquire(), got.append(now[0])))
    waiter.start()
    now[0] = 5.0  # all three still in flight: however late, the fourth must wait
    time.sleep(0.05)
    assert got == []
    lim.release(slots[0])  # answered at 5.0: its slot frees at 6.0
    time.sleep(0.05)
    assert got == []
    now[0] = 6.0
    lim.release(slots[1])  # wakes the waiter, which now finds slot 0 expired
    waiter.join(2)
    assert got == [6.0]


def test_limiter_holds_across_threads() -> None:
    lim = RateLimiter(10)
    sent: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(6):
            with lim.slot():
                with lock:
                    sent.append(time.monotonic())
                time.sleep(0.01)  # the request itself

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sent) == 24
    assert max_in_window(sent) <= 10
    assert sent[-1] - min(sent) >= 2.0  # 24 at 10/s cannot finish in under 2 s
    assert sent[-1] - min(sent) < 3.0  # and it is not needlessly slow
    lim.pause(0.5)
    t0 = time.monotonic()
    with lim.slot():
        assert time.monotonic() - t0 >= 0.45
