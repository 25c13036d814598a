"""The engine's own asyncio loop, on a daemon thread.

A server on the notebook kernel's loop stops answering while a cell runs, so
the protocols, the batcher's queues and their futures all live on this loop;
sync callers (magics, the CLI, tests) cross over with ``run_sync``.
"""

from __future__ import annotations

import asyncio
import selectors
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["EngineLoop"]

T = TypeVar("T")

# A non-blocking poll this soon after the last poll is skipped (see _GilFriendlySelector).
_POLL_GAP_S = 0.0001


class _GilFriendlySelector(selectors.DefaultSelector):
    """The loop's selector, skipping non-blocking polls made within 0.1 ms of the last poll.

    asyncio polls with a zero timeout on every turn that has callbacks ready, and
    every poll releases the GIL. With a notebook cell running pure Python, each
    release hands the GIL to the cell, and getting it back costs the engine a
    switch interval; a request takes several turns. Skipping the polls that
    could hardly find new I/O delays its discovery by at most 0.1 ms.
    """

    def __init__(self) -> None:
        super().__init__()
        self._last_poll = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout <= 0 and time.perf_counter() - self._last_poll < _POLL_GAP_S:
            return []
        try:
            return super().select(timeout)
        finally:
            self._last_poll = time.perf_counter()


class EngineLoop:
    """An asyncio event loop running forever in its own thread."""

    def __init__(self, name: str = "tfserve-loop") -> None:
        self.loop = asyncio.SelectorEventLoop(_GilFriendlySelector())
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()
        # Cancel what is left so nothing runs on a closed loop.
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    @property
    def running(self) -> bool:
        """Whether the loop thread is alive."""
        return self._thread.is_alive()

    def in_loop_thread(self) -> bool:
        """Whether the caller runs on the loop's thread (where ``run_sync`` would deadlock)."""
        return threading.current_thread() is self._thread

    def run_sync(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a coroutine on the loop and wait for its result from another thread."""
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError("run_sync called from the engine loop's own thread")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the loop and join its thread."""
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
