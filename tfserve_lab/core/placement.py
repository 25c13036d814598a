"""Where a model call runs: inline on the engine loop, or on a model thread.

The one place that decides, for the engine's unbatched calls and the batcher's
batches alike. TensorFlow releases the GIL, so a call on a thread overlaps with
protocol work on the loop; but the hand-off costs the loop a thread wake-up and
a GIL hand-back (~0.1-0.2 ms here), as much as a small model's whole call. So:

- calls measured cheap (``CallCosts.cheap``) run inline;
- calls measured a few milliseconds run inline when nothing could overlap
  with them (``alone``: the only request in the engine, even after the
  requests ready on the loop had a turn), since the overlap would buy nothing
  and the hand-off is pure cost; a request arriving meanwhile waits that long;
- everything else, and every call not measured yet, runs on a thread.

Loop-thread only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Executor
from typing import Generic, TypeVar

from tfserve_lab.core.call_costs import CallCosts
from tfserve_lab.errors import Unavailable

__all__ = ["CallPlacement"]

T = TypeVar("T")


class CallPlacement:
    """Starts model calls inline or on the model threads, as their measured costs say."""

    def __init__(self, executor: Executor, costs: CallCosts) -> None:
        """``costs`` may be shared with other placements (the batcher's pool differs, its calls' costs do not)."""
        self.costs = costs
        self._executor = executor

    def use_executor(self, executor: Executor) -> None:
        """Run threaded calls on ``executor`` from now on (those running finish where they are)."""
        self._executor = executor

    async def run(self, key: Hashable, job: Callable[[], T], alone: Callable[[], bool]) -> T:
        """Run ``job`` (a model call under ``key``: servable and signature) and return its result.

        ``alone`` says whether no other request is in the engine to overlap with. Before a call runs
        inline for that reason, the requests already ready on the loop get one turn to arrive.

        Raises:
            Unavailable: the model threads are shut down (the engine is stopping).
        """
        costs = self.costs
        if costs.cheap(key):
            return self._inline(key, job)
        if costs.idle_inline(key) and alone():
            await asyncio.sleep(0)
            if alone():
                return self._inline(key, job)
        return await self._threaded(key, job, None)

    def start(self, key: Hashable, job: Callable[[], T], duration: Callable[[], float | None]) -> asyncio.Future[T]:
        """Start ``job`` and return its future (done already when the job ran inline): the batcher's way.

        ``duration``, read on the loop once the job is done, gives the cost to record (the batcher
        counts the model call, not its merge and split); None: the model never ran.

        Raises:
            Unavailable: the model threads are shut down (the engine is stopping).
        """
        if not self.costs.cheap(key):
            return self._threaded(key, job, duration)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        try:
            future.set_result(job())
        except Exception as exc:  # noqa: BLE001 - delivered to the batch's waiters, as from a thread
            future.set_exception(exc)
        seconds = duration()
        if seconds is not None:
            self.costs.record(key, seconds)
        return future

    def _inline(self, key: Hashable, job: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return job()
        finally:
            self.costs.record(key, time.perf_counter() - started)

    def _threaded(
        self, key: Hashable, job: Callable[[], T], duration: Callable[[], float | None] | None
    ) -> asyncio.Future[T]:
        timed = _Timed(job)
        try:
            future = asyncio.get_running_loop().run_in_executor(self._executor, timed)
        except RuntimeError:
            raise Unavailable("The model threads are shut down; the server is stopping.") from None
        costs = self.costs

        def record(_: asyncio.Future[T]) -> None:
            seconds = duration() if duration is not None else timed.seconds
            if seconds is not None:
                costs.record(key, seconds)

        future.add_done_callback(record)
        return future


class _Timed(Generic[T]):
    """A job that measures itself on its thread (queueing for the thread excluded)."""

    __slots__ = ("_job", "seconds")

    def __init__(self, job: Callable[[], T]) -> None:
        self._job = job
        self.seconds: float | None = None

    def __call__(self) -> T:
        started = time.perf_counter()
        try:
            return self._job()
        finally:
            self.seconds = time.perf_counter() - started
