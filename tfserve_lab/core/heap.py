"""Keeps the garbage collector's full passes over the loaded models off a server process's request path.

A loaded TensorFlow model leaves a few hundred thousand long-lived Python
objects (its functions, graphs, trackables). Every full collection walks all
of them: about 200 ms here, every few seconds under load, with the event loop
stopped meanwhile (bench/RESULTS.md). ``gc.freeze`` takes the objects alive
now out of every later pass. Each load or unload thaws, collects (so the
cycles of an unloaded version go) and freezes again, once the changes have
settled, so a config of many models costs one pass, not one per version.

Only for a process that is the server: in a notebook kernel the heap is the
user's, and their frozen cycles would wait for the next load to be collected.
"""

from __future__ import annotations

import gc
import threading

from tfserve_lab.core.events import EngineEvent, VersionChanged
from tfserve_lab.core.types import VersionState

__all__ = ["HeapFreezer"]

_SETTLED_S = 1.0  # a version change that follows within this long joins the same pass


class HeapFreezer:
    """An engine observer: freezes the heap after the versions served change; ``close`` thaws it."""

    def __init__(self, settle_s: float = _SETTLED_S) -> None:
        self._settle_s = settle_s
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._closed = False

    def observe(self, event: EngineEvent) -> None:
        """Refreeze a moment after a version became available or was unloaded."""
        if not isinstance(event, VersionChanged) or event.state not in (VersionState.AVAILABLE, VersionState.END):
            return
        with self._lock:
            if self._closed:
                return
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self._settle_s, self.freeze)
            self._timer.daemon = True
            self._timer.start()

    def freeze(self) -> None:
        """Collect everything (frozen objects included), then freeze what is alive."""
        with self._lock:
            if self._closed:
                return
            if self._timer is not None:
                self._timer.cancel()  # a no-op when the timer itself is calling
                self._timer = None
            gc.unfreeze()
            gc.collect()
            gc.freeze()

    def close(self) -> None:
        """Stop freezing and give every object back to the collector."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            gc.unfreeze()
