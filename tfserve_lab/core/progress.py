"""How far the load running on this thread has come (its warmup), for observers that show progress.

The watcher runs each load on one thread and says where reports go; code deep
in a load (``run_warmup``) reports without knowing which model it serves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["Reporter", "report", "reporting"]

Reporter = Callable[[str, int, int], None]  # stage, done, total

_current = threading.local()


@contextmanager
def reporting(reporter: Reporter) -> Iterator[None]:
    """Send this thread's ``report`` calls to ``reporter`` for the duration of the block."""
    previous = getattr(_current, "reporter", None)
    _current.reporter = reporter
    try:
        yield
    finally:
        _current.reporter = previous


def report(stage: str, done: int, total: int) -> None:
    """Say that ``done`` of ``total`` steps of ``stage`` are finished (nothing when nobody listens)."""
    reporter: Reporter | None = getattr(_current, "reporter", None)
    if reporter is not None:
        reporter(stage, done, total)
