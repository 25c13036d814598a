"""``--rest_api_timeout_in_ms`` for every request in flight, with one timer instead of one per request.

Every REST request gets the same timeout, so deadlines expire in the order the
requests arrived: a FIFO of deadlines and a single loop timer armed for the
oldest suffice. A finished request is only marked; marked entries leave from
the front as they reach it. Loop-thread only.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

__all__ = ["Deadline", "Deadlines"]


class Deadline:
    """One request's deadline; ``finish`` it when the request is answered."""

    __slots__ = ("at", "expire", "finished")

    def __init__(self, at: float, expire: Callable[[], None]) -> None:
        self.at = at
        self.expire = expire
        self.finished = False


class Deadlines:
    """Deadlines ``timeout_s`` after each ``add``; an expired one runs its ``expire`` callback once."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._queue: deque[Deadline] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, expire: Callable[[], None]) -> Deadline:
        """Start a deadline on the running loop; ``expire`` is called when it passes unfinished."""
        loop = asyncio.get_running_loop()
        deadline = Deadline(loop.time() + self.timeout_s, expire)
        self._queue.append(deadline)
        if self._timer is None:
            self._timer = loop.call_at(deadline.at, self._on_timer)
        return deadline

    def finish(self, deadline: Deadline) -> None:
        """The request was answered: its deadline no longer applies."""
        deadline.finished = True
        queue = self._queue
        # Requests mostly finish in arrival order, so this keeps the queue about as long as the requests in flight.
        while queue and queue[0].finished:
            queue.popleft()

    def _on_timer(self) -> None:
        self._timer = None
        queue = self._queue
        loop = asyncio.get_running_loop()
        now = loop.time()
        while queue:
            head = queue[0]
            if head.finished:
                queue.popleft()
            elif head.at <= now:
                queue.popleft()
                head.finished = True
                head.expire()
            else:
                self._timer = loop.call_at(head.at, self._on_timer)
                break

    def close(self) -> None:
        """Stop the timer; deadlines still queued never expire."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()
