"""The count of REST model requests being answered, so that a graceful stop can wait for them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

__all__ = ["InFlight"]


class InFlight:
    """Counts model requests being answered, so a stop can wait for them (on the engine loop)."""

    def __init__(self) -> None:
        self.count = 0
        self._idle: asyncio.Event | None = None

    def enter(self) -> None:
        """A request started."""
        self.count += 1

    def leave(self) -> None:
        """A request was answered (or given up)."""
        self.count -= 1
        if self.count == 0 and self._idle is not None:
            self._idle.set()

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """Count the request for the duration of the block."""
        self.enter()
        try:
            yield
        finally:
            self.leave()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is in flight, at most ``timeout`` seconds; returns whether it got there."""
        if self.count == 0:
            return True
        self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True
