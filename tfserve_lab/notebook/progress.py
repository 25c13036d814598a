"""Progress of a long magic (export, deploy, warmup): a progress bar where a frontend shows widgets, text otherwise."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["progress_display"]

Progress = Callable[[str, "float | None"], None]


def _in_kernel() -> bool:
    """Whether this runs in a Jupyter kernel, whose frontend can show widgets (a terminal IPython cannot)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class _Bar:
    """An ipywidgets progress bar with the current step written beside it."""

    def __init__(self, title: str) -> None:
        import ipywidgets
        from IPython.display import display

        self._bar = ipywidgets.FloatProgress(value=0.0, min=0.0, max=1.0, description=title)
        self._text = ipywidgets.Label("")
        self._bar.style.description_width = "initial"
        display(ipywidgets.HBox([self._bar, self._text]))

    def update(self, text: str, fraction: float | None) -> None:
        self._text.value = text
        if fraction is not None:
            self._bar.value = max(self._bar.value, min(1.0, fraction))

    def finish(self, ok: bool) -> None:
        self._bar.bar_style = "success" if ok else "danger"
        if ok:
            self._bar.value = 1.0


class _Lines:
    """One printed line per new step."""

    def __init__(self, title: str) -> None:
        self._title = title
        self._last = ""

    def update(self, text: str, fraction: float | None) -> None:
        if text != self._last:
            self._last = text
            print(f"{self._title}: {text}", flush=True)

    def finish(self, ok: bool) -> None:
        return


@contextmanager
def progress_display(title: str, *, quiet: bool = False) -> Iterator[Progress]:
    """Show the steps of the block's operation; yields the callback to report them with.

    Args:
        title: What is being done ("Deploying my_model").
        quiet: Show nothing (the operation returns at once).
    """
    shown: Any = None

    def update(text: str, fraction: float | None) -> None:
        nonlocal shown
        if quiet:
            return
        if shown is None:
            shown = _Bar(title) if _in_kernel() else _Lines(title)
        shown.update(text, fraction)

    ok = False
    try:
        yield update
        ok = True
    finally:
        if shown is not None:
            shown.finish(ok)
