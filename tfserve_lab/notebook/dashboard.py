"""The live dashboard widget: versions, states, labels and split with controls, and charts refreshed every second."""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure

from tfserve_lab import api
from tfserve_lab.errors import ErrorCode, InvalidArgument, TfServeError
from tfserve_lab.notebook.charts import dashboard_figure, figure_png

__all__ = ["Dashboard", "parse_weights"]

_CELL = "style='text-align:left;padding:0 10px 0 0'"


def parse_weights(text: str) -> dict[int | str, int]:
    """The split box's ``"1=90 2=10"`` (or ``stable=90 canary=10``, commas allowed) as split weights.

    Raises:
        InvalidArgument: For anything that is not VERSION=PERCENT pairs, or for none at all.
    """
    weights = api.parse_weights(text)
    if not weights:
        raise InvalidArgument("Give VERSION=PERCENT pairs like 1=90 2=10.")
    return weights


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


class Dashboard(widgets.VBox):
    """Models, versions and the split of the running engine, with charts refreshed by a daemon thread.

    The refresher is its own thread (not the kernel's event loop), so it keeps ticking while a cell runs. It is
    the only thread that builds Figures in normal use (``refresh()`` takes a lock, for tests that call it too).
    It stops when the dashboard is closed, or when the engine it was opened on stops. Its failures show as one
    line in the dashboard; they never raise into the kernel.
    """

    def __init__(self, model: str | None = None, *, interval: float = 1.0, autostart: bool = True) -> None:
        """Open a dashboard on the running engine.

        Args:
            model: The model shown first (default: the first served one).
            interval: Seconds between refreshes.
            autostart: Start the refresher thread now (tests pass False and call ``refresh()``).

        Raises:
            TfServeError: FAILED_PRECONDITION when no engine runs; NOT_FOUND for an unknown model.
        """
        # Set first: ipywidgets' __del__ calls close() even when __init__ raised below.
        self._closed = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        session = api.current()
        names = [m.name for m in api.status().models]
        if model is not None and model not in names:
            raise TfServeError(f"Servable not found for request: Latest({model})", code=ErrorCode.NOT_FOUND)
        self.model = widgets.Dropdown(options=names, value=model or (names[0] if names else None), description="model")
        self.table = widgets.HTML()
        self.unload_version = widgets.Dropdown(options=[], description="version", layout={"width": "180px"})
        self.unload_button = widgets.Button(description="Unload version", button_style="warning")
        self.split_text = widgets.Text(placeholder="1=90 2=10", description="split", layout={"width": "260px"})
        self.split_apply = widgets.Button(description="Apply split")
        self.split_off = widgets.Button(description="Split off")
        self.message = widgets.HTML()
        self.image = widgets.Image(format="png", layout={"max_width": "900px"})
        super().__init__(
            children=[
                widgets.HBox([self.model]),
                self.table,
                widgets.HBox([self.unload_version, self.unload_button]),
                widgets.HBox([self.split_text, self.split_apply, self.split_off]),
                self.message,
                self.image,
            ]
        )
        self.interval = interval
        self.refresh_count = 0
        self.figure: Figure | None = None  # the last chart built, for tests and for saving
        self._session = session
        self._lock = threading.Lock()
        self._refresh_error = False
        self.model.observe(lambda _: self._wake.set(), names="value")
        self.unload_button.on_click(lambda _: self._unload())
        self.split_apply.on_click(lambda _: self._apply_split())
        self.split_off.on_click(lambda _: self._end_split())
        if autostart:
            self.start()

    # -- refresher -------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the refresher thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the refresher thread (once; a closed dashboard stays closed)."""
        if self.running or self._closed.is_set():
            return
        self._thread = threading.Thread(target=self._loop, name="tfserve-dashboard", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the refresher thread and wait for it."""
        self._closed.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def close(self) -> None:
        """Stop refreshing and close the widget and its children in the front end."""
        self.stop()
        for child in self._descendants():
            child.close()
        super().close()

    def _descendants(self) -> list[widgets.Widget]:
        found: list[widgets.Widget] = []
        for child in self.children:
            found += [*getattr(child, "children", ()), child]
        return found

    def _loop(self) -> None:
        # Ticks on a fixed schedule (not "interval after the last one finished") so the rate stays 1/s while
        # rendering takes time; a slow tick is not made up with a burst.
        next_tick = time.monotonic()
        while not self._closed.is_set():
            try:
                if not self.refresh():
                    return
            except Exception as exc:  # noqa: BLE001 - nothing may escape a background thread into the kernel
                self._refresh_error = True
                self._say(f"Dashboard refresh failed: {type(exc).__name__}: {exc}", error=True)
            next_tick = max(next_tick + self.interval, time.monotonic())
            self._wake.wait(max(0.0, next_tick - time.monotonic()))
            self._wake.clear()

    def refresh(self) -> bool:
        """Read the engine's status and statistics, update the table and controls, redraw the charts.

        Returns:
            False when the engine this dashboard was opened on no longer runs (the charts stay as they were).
        """
        with self._lock:
            try:
                session = api.current()
            except TfServeError:
                session = None
            if session is not self._session:
                self._say("The engine stopped: this dashboard no longer updates.", error=True)
                return False
            status = api.status()
            names = [m.name for m in status.models]
            if list(self.model.options) != names:
                keep = self.model.value if self.model.value in names else (names[0] if names else None)
                self.model.options = names
                self.model.value = keep
            name = self.model.value
            model = next((m for m in status.models if m.name == name), None)
            snapshot: Mapping[str, Any] = api.live_stats() or {"models": {}, "batch_sizes": {}}
            weights = api.split_weights(name) if name else {}
            stats = snapshot.get("models", {}).get(name, {}).get("versions", {})
            self.table.value = self._table(model, weights, stats)
            available = [str(v.version) for v in model.versions if v.state.name == "AVAILABLE"] if model else []
            if list(self.unload_version.options) != available:
                keep = self.unload_version.value if self.unload_version.value in available else None
                self.unload_version.options = available
                self.unload_version.value = keep or (available[-1] if available else None)
            if name is None:
                self.figure = None
            else:
                self.figure = dashboard_figure(snapshot, name, split=weights)
                self.image.value = figure_png(self.figure)
            self.refresh_count += 1
            if self._refresh_error:
                self._refresh_error = False
                self._say("")
            return True

    # -- table and controls ------------------------------------------------------

    @staticmethod
    def _table(model: api.ModelStatus | None, weights: Mapping[int, int], stats: Mapping[str, Any]) -> str:
        if model is None:
            return "<i>No model is served: deploy one with %tfserve deploy.</i>"
        labels: dict[int, list[str]] = {}
        for label, version in model.labels.items():
            labels.setdefault(version, []).append(label)
        total = sum(weights.values())
        header: Sequence[str] = ("version", "state", "labels", "split", "req/s", "p50 ms", "p99 ms", "requests")
        rows = []
        for status in model.versions:
            live = stats.get(str(status.version), {})
            latency = live.get("latency_ms", {})
            share = f"{100 * weights[status.version] / total:.0f}%" if status.version in weights else "-"
            cells = (
                status.version,
                status.state.name,
                ", ".join(sorted(labels.get(status.version, []))) or "-",
                share,
                _fmt(live.get("rps")),
                _fmt(latency.get("p50"), 2),
                _fmt(latency.get("p99"), 2),
                live.get("requests", 0),
            )
            rows.append("<tr>" + "".join(f"<td {_CELL}>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
        head = "".join(f"<th {_CELL}>{h}</th>" for h in header)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"

    def _say(self, text: str, *, error: bool = False) -> None:
        style = "color:#b00020" if error else "color:#555"
        self.message.value = f"<span style='{style}'>{html.escape(text)}</span>" if text else ""

    def _act(self, action: Any, done: str) -> None:
        """Run a control's API call on the kernel thread; failures become the one-line message."""
        try:
            action()
        except TfServeError as exc:
            self._say(exc.message, error=True)
            return
        self._say(done)
        self._wake.set()  # the refresher redraws now rather than at its next tick

    def _unload(self) -> None:
        name, version = self.model.value, self.unload_version.value
        if not name or not version:
            self._say("Pick a version to unload.", error=True)
            return
        self._act(lambda: api.undeploy(name, int(version)), f"Version {version} of {name} is unloading.")

    def _apply_split(self) -> None:
        name = self.model.value
        if not name:
            return
        self._act(lambda: api.split(name, parse_weights(self.split_text.value)), f"Split of {name} applied.")

    def _end_split(self) -> None:
        name = self.model.value
        if not name:
            return
        self._act(lambda: api.split(name, None), f"Split of {name} ended: the newest version serves.")
