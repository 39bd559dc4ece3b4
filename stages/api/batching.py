"""Opportunistic micro-batching: concurrent requests share one call to the model.

A single worker takes whatever requests are queued when it becomes free (no waiting
window, so an idle service adds no latency) and scores them together: the model's
per-call overhead (scikit-learn's input checks and categorical encoding, one call per tree
of each head) is paid once per batch, not per request. One worker thread also keeps the
model off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


class MicroBatcher(Generic[In, Out]):
    """Queues the items of concurrent submits and runs `fn` on as many as are waiting (up to
    `max_batch`), in one worker thread; each submit gets its own items' results, in order."""

    def __init__(
        self,
        fn: Callable[[list[In]], list[Out]],
        max_batch: int,
        on_batch: Callable[[int], None] | None = None,
        initializer: Callable[[], object] | None = None,
    ) -> None:
        self._fn = fn
        self._max_batch = max_batch
        self._on_batch = on_batch
        self._queue: asyncio.Queue[tuple[Sequence[In], asyncio.Future[list[Out]]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="model", initializer=initializer
        )

    async def start(self) -> None:
        """Start the worker task (in the running event loop, hence not in __init__)."""
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._pool.shutdown(wait=True)

    async def submit(self, items: Sequence[In]) -> list[Out]:
        """fn's results for `items`, scored with whatever else is queued meanwhile."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.submit before start")
        fut: asyncio.Future[list[Out]] = asyncio.get_running_loop().create_future()
        await self._queue.put((items, fut))
        return await fut

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            size = len(jobs[0][0])
            while size < self._max_batch and not self._queue.empty():
                job = self._queue.get_nowait()
                jobs.append(job)
                size += len(job[0])
            jobs = [(items, fut) for items, fut in jobs if not fut.cancelled()]
            if not jobs:
                continue
            flat = [x for items, _ in jobs for x in items]
            try:
                results = await loop.run_in_executor(self._pool, self._fn, flat)
            except Exception:  # isolate the failing request below and keep serving
                log.exception(
                    "batch of %s failed; retrying its %s requests one by one", size, len(jobs)
                )
                await self._one_by_one(jobs)
                continue
            if self._on_batch is not None:
                self._on_batch(len(flat))
            start = 0
            for items, fut in jobs:
                if not fut.done():
                    fut.set_result(results[start : start + len(items)])
                start += len(items)

    async def _one_by_one(self, jobs: list[tuple[Sequence[In], asyncio.Future[list[Out]]]]) -> None:
        loop = asyncio.get_running_loop()
        for items, fut in jobs:
            try:
                result = await loop.run_in_executor(self._pool, self._fn, list(items))
            except Exception as exc:  # reported to that request only, never crashes the loop
                if not fut.done():
                    fut.set_exception(exc)
            else:
                if not fut.done():
                    fut.set_result(result)
