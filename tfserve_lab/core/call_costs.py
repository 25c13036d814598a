"""How long model calls take, to run the cheap ones inline on the engine loop.

Handing a call to a batch thread costs the loop a thread wake-up and a GIL
hand-back (measured here: ~0.2 ms, as much as a small model's whole call).
For calls measured below the threshold, running them on the loop is faster,
and for long ones the batch threads keep the loop free. Unknown calls go to
the batch threads until measured.
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["CallCosts"]

_WEIGHT = 0.2  # exponential moving average: recent calls count most


class CallCosts:
    """A moving average of call durations per key (servable and signature); loop-thread only."""

    def __init__(self, inline_below_s: float) -> None:
        self.inline_below_s = inline_below_s
        self._mean: dict[Hashable, float] = {}

    def cheap(self, key: Hashable) -> bool:
        """Whether calls under ``key`` are measured cheap enough to run inline."""
        mean = self._mean.get(key)
        return mean is not None and mean < self.inline_below_s

    def record(self, key: Hashable, seconds: float) -> None:
        """Fold one measured duration into the average."""
        mean = self._mean.get(key)
        self._mean[key] = seconds if mean is None else mean + _WEIGHT * (seconds - mean)

    def forget(self, key: Hashable) -> None:
        """Drop a key (its servable was unloaded)."""
        self._mean.pop(key, None)
