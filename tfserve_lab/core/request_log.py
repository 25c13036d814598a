"""Sampled requests and their answers, handed to log sinks without ever holding a request up.

A model's ``logging_config`` (TF Serving's) gives its sampling rate and a
sink; a notebook capture adds a tap of its own. On the request path the
engine pays one attribute check when nothing listens, and otherwise a draw
and a ``put_nowait`` into a bounded queue: a full queue drops the record and
counts it, it never blocks or fails the request. A sink's own thread turns
records into ``PredictionLog`` protos and files.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tfserve_lab.config import RequestLogging

__all__ = ["LoggedRequest", "QueueSink", "RequestLog", "Sink", "stack"]

log = logging.getLogger("tfserve_lab")

QUEUE_SIZE = 10_000  # records waiting for a sink's thread, per sink


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One served request and its answer, as the engine saw them.

    ``inputs`` are the predict inputs by alias (or ``{"examples": serialized tf.Examples}`` for
    classify, regress and MultiInference); ``outputs`` the predict outputs by alias, a
    ``ClassifyResult`` / ``RegressResult``, or for MultiInference the ``(method, result)`` of
    every task.
    """

    model: str
    version: int
    signature: str
    method: str
    inputs: Mapping[str, Any]
    outputs: Any
    time_s: float = field(default_factory=time.time)
    sampling_rate: float = 1.0
    output_filter: Sequence[str] = ()


class Sink:
    """Where sampled records go; ``offer`` must not block."""

    def offer(self, record: LoggedRequest) -> bool:
        """Take a record; False when it was dropped."""
        raise NotImplementedError

    def close(self) -> None:
        """Write what is pending and release files."""


class QueueSink(Sink):
    """A bounded queue drained by a thread that calls ``write`` for each record, then ``close_writer``."""

    def __init__(
        self,
        write: Callable[[LoggedRequest], None],
        *,
        close_writer: Callable[[], None] | None = None,
        name: str = "tfserve-request-log",
        maxsize: int = QUEUE_SIZE,
    ) -> None:
        self._write = write
        self._close_writer = close_writer
        self._queue: queue.Queue[LoggedRequest | None] = queue.Queue(maxsize)
        self.dropped = 0
        self.written = 0
        self._thread = threading.Thread(target=self._drain, name=name, daemon=True)
        self._thread.start()

    def offer(self, record: LoggedRequest) -> bool:
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def _drain(self) -> None:
        while True:
            record = self._queue.get()
            if record is None:
                break
            try:
                self._write(record)
                self.written += 1
            except Exception:  # a bad record or a full disk must not stop the logging of the next ones
                log.exception("Writing a request log record of %s failed", record.model)
        if self._close_writer is not None:
            self._close_writer()

    def close(self) -> None:
        self._queue.put(None)  # after every record already queued
        self._thread.join()


class _Tap(Sink):
    """An in-memory sink with its own rate and an optional record budget (a notebook capture)."""

    def __init__(self, rate: float, count: int | None) -> None:
        self.rate = rate
        self.count = count
        self.records: list[LoggedRequest] = []
        self.full = threading.Event()

    def offer(self, record: LoggedRequest) -> bool:
        if self.full.is_set():
            return False
        self.records.append(record)
        if self.count is not None and len(self.records) >= self.count:
            self.full.set()
        return True


class RequestLog:
    """Per-model sampling into sinks (TF Serving's ``logging_config``) and notebook taps."""

    def __init__(self, on_drop: Callable[[str], None] | None = None, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._configured: dict[str, tuple[float, Sink]] = {}
        self._applied: dict[str, RequestLogging] = {}  # the logging_config behind each configured sink
        self._taps: dict[str, list[_Tap]] = {}
        self._random = random.Random(seed)
        self._on_drop = on_drop
        self.active = False  # read on every request without the lock: one attribute check when idle

    def configure(self, model: str, rate: float, sink: Sink | None) -> Sink | None:
        """Log ``model``'s requests at ``rate`` into ``sink`` (None: stop); returns the sink it replaces."""
        with self._lock:
            old = self._configured.pop(model, None)
            if sink is not None and rate > 0:
                self._configured[model] = (rate, sink)
            self._refresh()
        return old[1] if old is not None else None

    def apply(
        self, wanted: Mapping[str, RequestLogging], make_sink: Callable[[str, RequestLogging], Sink] | None
    ) -> None:
        """Start, change or stop each model's ``logging_config`` as ``wanted`` says (a model left out stops).

        A model whose config did not change keeps its sink; a replaced sink is closed (flushed).
        """
        for name in set(self._applied) | set(wanted):
            config = wanted.get(name)
            if config == self._applied.get(name):
                continue
            sink = make_sink(name, config) if config is not None and make_sink is not None else None
            old = self.configure(name, config.sampling_rate if config is not None else 0.0, sink)
            if old is not None:
                old.close()
            if config is None:
                self._applied.pop(name, None)
            else:
                self._applied[name] = config

    def configured(self) -> dict[str, tuple[float, Sink]]:
        """The models logged by configuration, with their rate and sink."""
        with self._lock:
            return dict(self._configured)

    def tap(self, model: str, rate: float = 1.0, count: int | None = None) -> _Tap:
        """Start collecting ``model``'s requests in memory (sampled at ``rate``, at most ``count``)."""
        tap = _Tap(rate, count)
        with self._lock:
            self._taps.setdefault(model, []).append(tap)
            self._refresh()
        return tap

    def untap(self, model: str, tap: _Tap) -> None:
        """Stop a tap (its records stay with it)."""
        with self._lock:
            taps = self._taps.get(model, [])
            if tap in taps:
                taps.remove(tap)
            if not taps:
                self._taps.pop(model, None)
            self._refresh()

    def _refresh(self) -> None:
        self.active = bool(self._configured or self._taps)

    def offer(self, model: str, make: Callable[[float], LoggedRequest]) -> None:
        """Sample this request for each listener of ``model``; ``make(rate)`` builds the record once."""
        configured = self._configured.get(model)
        taps = self._taps.get(model)
        if configured is None and not taps:
            return
        draw = self._random.random()
        record: LoggedRequest | None = None
        if configured is not None and draw < configured[0]:
            record = make(configured[0])
            if not configured[1].offer(record) and self._on_drop is not None:
                self._on_drop(model)
        for tap in taps or ():
            if draw < tap.rate:
                tap.offer(record if record is not None and record.sampling_rate == tap.rate else make(tap.rate))

    def close(self) -> None:
        """Flush and close every configured sink."""
        with self._lock:
            sinks = [sink for _, sink in self._configured.values()]
            self._configured.clear()
            self._taps.clear()
            self._refresh()
        for sink in sinks:
            sink.close()


def stack(records: Sequence[LoggedRequest], side: str) -> dict[str, np.ndarray]:
    """The predict inputs (``side="inputs"``) or outputs of records, concatenated along the batch."""
    arrays: dict[str, list[np.ndarray]] = {}
    for record in records:
        values = record.inputs if side == "inputs" else record.outputs
        if not isinstance(values, Mapping):
            continue
        for name, value in values.items():
            array = np.asarray(value)
            arrays.setdefault(name, []).append(array if array.ndim else array.reshape(1))
    return {name: np.concatenate(parts) for name, parts in arrays.items()}
