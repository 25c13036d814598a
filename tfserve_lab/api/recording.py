"""Live requests and answers of a served model, collected in memory (a ``Capture``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from tfserve_lab.api.session import require_model, running_engine
from tfserve_lab.errors import InvalidArgument

if TYPE_CHECKING:
    from tfserve_lab.capture import Capture

__all__ = ["capture"]


def capture(
    name: str,
    *,
    seconds: float = 30.0,
    count: int | None = None,
    rate: float = 1.0,
    progress: Callable[[str, float | None], None] | None = None,
) -> Capture:
    """Collect model ``name``'s live requests and answers in memory (no file needed).

    Args:
        name: The served model.
        seconds: How long to listen.
        count: Stop after this many requests instead (or first, with ``seconds``).
        rate: Fraction of requests kept (1.0: all).
        progress: Called with a line of text and the fraction done while it listens.

    Returns:
        A ``Capture``: inputs and outputs as numpy arrays, versions, timestamps; ``save`` and
        ``Capture.load`` use TF Serving's ``PredictionLog`` TFRecord format.
    """
    from tfserve_lab.capture import Capture

    if not 0 < rate <= 1:
        raise InvalidArgument(f"rate is a fraction of the requests: 0 < rate <= 1, got {rate}")
    require_model(name)
    request_log = running_engine().request_log
    tap = request_log.tap(name, rate, count)
    started = time.monotonic()
    try:
        while not tap.full.wait(0.1):
            elapsed = time.monotonic() - started
            if elapsed >= seconds:
                break
            if progress is not None:
                done = len(tap.records) / count if count else elapsed / seconds
                progress(f"{len(tap.records)} requests of {name} captured", min(1.0, done))
    finally:
        request_log.untap(name, tap)
    return Capture(name, tuple(tap.records))
