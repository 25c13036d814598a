"""The kernel's interpreter settings that the in-kernel engine changes while it runs, and their restoration.

A cell running pure Python holds the GIL; every time an engine thread wants
it back (after a socket read, a model call, a timer), it waits up to the
interpreter's switch interval (5 ms by default) for the cell to let go, and a
request needs several such hand-overs. A shorter interval bounds each wait.
When no engine thread asks for the GIL, the interval costs the cell nothing.
"""

from __future__ import annotations

import sys
import threading

__all__ = ["DEFAULT_SWITCH_INTERVAL_S", "restore_switch_interval", "set_switch_interval"]

# bench/busy_cell.py: at 0.03 ms a busy cell leaves external clients p99 within 3x of an idle kernel's and
# half its throughput (0.1 ms: 2.6x and 42%; Python's 5 ms: 40x and 3%); with no requests it costs nothing.
DEFAULT_SWITCH_INTERVAL_S = 0.00003

_lock = threading.Lock()
_saved: float | None = None  # the interval in force before the engine changed it


def set_switch_interval(seconds: float) -> None:
    """Use ``seconds`` as the switch interval until ``restore_switch_interval`` (nested calls keep the first saved)."""
    global _saved
    with _lock:
        if _saved is None:
            _saved = sys.getswitchinterval()
        sys.setswitchinterval(seconds)


def restore_switch_interval() -> None:
    """Put back the interval that was in force before ``set_switch_interval``; nothing when it was never called."""
    global _saved
    with _lock:
        if _saved is not None:
            sys.setswitchinterval(_saved)
            _saved = None
