"""How long model calls take, to run the cheap ones inline on the engine loop.

Handing a call to a batch thread costs the loop a thread wake-up and a GIL
hand-back (measured here: ~0.2 ms, as much as a small model's whole call).
For calls measured below the threshold, running them on the loop is faster,
and for long ones the batch threads keep the loop free. Unknown calls go to
the batch threads until measured.

The estimate is the median of the last few calls: on a busy machine a call is
sometimes preempted and measures ten times its cost, and a mean would send a
cheap model to the threads after a couple of those. A call measured on a batch
thread also includes its waits for the GIL, which the busy loop holds, so a
cheap model sent there measures expensive and would stay there: calls
measured moderately expensive (under ``PROBE_BELOW`` times the threshold) run
inline once in ``PROBE_EVERY`` to measure them again. Expensive models are never
probed, so they never stall the loop.

When the loop has nothing else to do, the overlap a batch thread buys is
worth nothing and the hand-off is pure cost (0.1 ms of a 1 ms call here): the
engine then runs calls measured under ``IDLE_INLINE_BELOW`` times the
threshold inline too (``idle_inline``). A request that arrives meanwhile
waits at most that long.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

__all__ = ["IDLE_INLINE_BELOW", "PROBE_BELOW", "PROBE_EVERY", "WINDOW", "CallCosts"]

WINDOW = 9
PROBE_EVERY = 64
PROBE_BELOW = 10.0
IDLE_INLINE_BELOW = 8.0


class _Key:
    __slots__ = ("median", "samples", "skipped")

    def __init__(self) -> None:
        self.samples: deque[float] = deque(maxlen=WINDOW)
        self.median = 0.0
        self.skipped = 0


class CallCosts:
    """Recent call durations per key (servable and signature); loop-thread only."""

    def __init__(self, inline_below_s: float) -> None:
        self.inline_below_s = inline_below_s
        self._keys: dict[Hashable, _Key] = {}

    def cheap(self, key: Hashable) -> bool:
        """Whether the next call under ``key`` should run inline."""
        state = self._keys.get(key)
        if state is None:
            return False
        if state.median < self.inline_below_s:
            return True
        if state.median < self.inline_below_s * PROBE_BELOW:
            state.skipped += 1
            if state.skipped >= PROBE_EVERY:
                state.skipped = 0
                return True
        return False

    def idle_inline(self, key: Hashable) -> bool:
        """Whether a call under ``key`` may run inline while the loop has nothing else to do."""
        state = self._keys.get(key)
        return state is not None and state.median < self.inline_below_s * IDLE_INLINE_BELOW

    def record(self, key: Hashable, seconds: float) -> None:
        """Add one measured duration."""
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _Key()
        state.samples.append(seconds)
        state.median = sorted(state.samples)[len(state.samples) // 2]

    def estimate(self, key: Hashable) -> float | None:
        """The current estimate for ``key`` in seconds (None until measured)."""
        state = self._keys.get(key)
        return state.median if state is not None else None

    def forget(self, key: Hashable) -> None:
        """Drop a key (its servable was unloaded)."""
        self._keys.pop(key, None)
