"""Rolling per-second statistics of one engine, as plain JSON data for the dashboard and the JupyterLab panel."""

from __future__ import annotations

import math
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import TypedDict

from tfserve_lab.core.events import BatchRun, EngineEvent, RequestDone, VersionChanged
from tfserve_lab.errors import ErrorCode

__all__ = [
    "UNRESOLVED_VERSION",
    "LatencyMs",
    "LiveStats",
    "ModelStats",
    "Series",
    "StatsSnapshot",
    "VersionStats",
]

UNRESOLVED_VERSION = "none"
"""The version key of requests refused before a version was chosen (unknown model, bad label)."""


class LatencyMs(TypedDict):
    """Latency percentiles over the window, in milliseconds (None without requests)."""

    p50: float | None
    p95: float | None
    p99: float | None


class Series(TypedDict):
    """One point per second of the window, oldest first; ``t`` is the second's Unix time."""

    t: list[int]
    rps: list[int]
    eps: list[int]
    p50_ms: list[float | None]
    p99_ms: list[float | None]


class VersionStats(TypedDict):
    """One model version: cumulative totals, rates over the window, and its last known state."""

    requests: int
    errors: int
    rps: float
    eps: float
    latency_ms: LatencyMs
    series: Series
    state: str | None


class ModelStats(TypedDict):
    """The versions of one model, keyed by version number as a string."""

    versions: dict[str, VersionStats]


class StatsSnapshot(TypedDict):
    """Everything ``LiveStats.snapshot`` returns; ``batch_sizes[model][version][bound]`` counts
    batches in the window whose rows were at most ``bound`` (a power of two) and more than half of it."""

    models: dict[str, ModelStats]
    batch_sizes: dict[str, dict[str, dict[str, int]]]
    window_s: int


class _Second:
    """What one (model, version) saw during one wall-clock second."""

    __slots__ = ("batches", "errors", "requests", "samples", "second")

    def __init__(self) -> None:
        self.second = -1
        self.requests = 0
        self.errors = 0
        self.samples: list[float] = []
        self.batches: dict[int, int] = {}

    def reset(self, second: int) -> None:
        self.second, self.requests, self.errors = second, 0, 0
        self.samples = []
        self.batches = {}


class _Track:
    """A ring of ``window`` seconds plus cumulative totals for one (model, version)."""

    __slots__ = ("errors", "requests", "ring", "state")

    def __init__(self, window: int) -> None:
        self.ring = [_Second() for _ in range(window)]
        self.requests = 0
        self.errors = 0
        self.state: str | None = None

    def at(self, second: int) -> _Second:
        slot = self.ring[second % len(self.ring)]
        if slot.second != second:
            slot.reset(second)
        return slot


class LiveStats:
    """Requests/s, errors/s, latency percentiles and batch sizes over a rolling window.

    Register ``observe`` with ``Engine.add_observer``. Memory is bounded: ``window_s`` one-second
    slots per (model, version), at most ``samples_per_second`` latencies kept per slot (a uniform
    reservoir; request and error counts stay exact), and at most ``max_versions`` (model, version)
    pairs, the least recently active dropped first (bogus model names in failed requests cannot
    grow it without bound).
    """

    def __init__(
        self,
        *,
        window_s: int = 60,
        samples_per_second: int = 256,
        max_versions: int = 256,
        clock: Callable[[], float] = time.time,
        seed: int | None = 0,
    ) -> None:
        """Create empty statistics.

        Args:
            window_s: Seconds in the rolling window.
            samples_per_second: Latencies kept per (model, version) and second.
            max_versions: (model, version) pairs tracked at most.
            clock: Wall-clock seconds (Unix time); the series' ``t`` comes from it. Tests pass a fake.
            seed: Seeds the reservoir sampling, so runs repeat.
        """
        if window_s < 1 or samples_per_second < 1 or max_versions < 1:
            raise ValueError("window_s, samples_per_second and max_versions must be positive.")
        self.window_s = window_s
        self._cap = samples_per_second
        self._max_versions = max_versions
        self._clock = clock
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._tracks: OrderedDict[tuple[str, str], _Track] = OrderedDict()
        self._started = clock()

    def observe(self, event: EngineEvent) -> None:
        """Count one engine event; safe from any thread.

        Args:
            event: A ``RequestDone``, ``BatchRun`` or ``VersionChanged``.
        """
        if isinstance(event, RequestDone):
            version = UNRESOLVED_VERSION if event.version is None else str(event.version)
            second = math.floor(self._clock())
            with self._lock:
                track = self._track(event.model, version)
                slot = track.at(second)
                failed = int(event.code is not ErrorCode.OK)
                track.requests += 1
                track.errors += failed
                slot.requests += 1
                slot.errors += failed
                # Reservoir sampling (algorithm R): every request of the second is equally likely kept.
                if len(slot.samples) < self._cap:
                    slot.samples.append(event.latency_s)
                else:
                    kept = self._random.randrange(slot.requests)
                    if kept < self._cap:
                        slot.samples[kept] = event.latency_s
        elif isinstance(event, BatchRun):
            second = math.floor(self._clock())
            with self._lock:
                slot = self._track(event.model, str(event.version)).at(second)
                bound = _power_of_two(event.input_size)
                slot.batches[bound] = slot.batches.get(bound, 0) + 1
        elif isinstance(event, VersionChanged):
            with self._lock:
                self._track(event.model, str(event.version)).state = event.state.name

    def _track(self, model: str, version: str) -> _Track:
        key = (model, version)
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = _Track(self.window_s)
            while len(self._tracks) > self._max_versions:
                self._tracks.popitem(last=False)
        else:
            self._tracks.move_to_end(key)
        return track

    def snapshot(self, now: float | None = None) -> StatsSnapshot:
        """The statistics at ``now``, as plain JSON-able data.

        The window is the ``window_s`` whole seconds ending with the one holding ``now`` (the
        current second counts, partly elapsed). Rates divide by ``window_s``, or by the time since
        this object was created while that is shorter (at least one second). Percentiles are
        nearest-rank over the kept latencies, each weighted by how many requests it stands for.

        Args:
            now: Unix time to read the window at; the clock's time when None.

        Returns:
            ``{"models": {name: {"versions": {"1": VersionStats}}}, "batch_sizes": {...}, "window_s": 60}``.
        """
        now = self._clock() if now is None else now
        current = math.floor(now)
        first = max(current - self.window_s + 1, math.floor(self._started))
        span = min(float(self.window_s), max(1.0, now - self._started))
        models: dict[str, ModelStats] = {}
        batch_sizes: dict[str, dict[str, dict[str, int]]] = {}
        with self._lock:
            for (model, version), track in sorted(self._tracks.items()):
                slots = {s.second: s for s in track.ring if first <= s.second <= current}
                in_window = list(slots.values())
                requests = sum(s.requests for s in in_window)
                errors = sum(s.errors for s in in_window)
                p50, p95, p99 = _percentiles(((s.requests, s.samples) for s in in_window), (0.5, 0.95, 0.99))
                series: Series = {"t": [], "rps": [], "eps": [], "p50_ms": [], "p99_ms": []}
                for second in range(first, current + 1):
                    slot = slots.get(second)
                    points = _percentiles([(slot.requests, slot.samples)], (0.5, 0.99)) if slot else [None, None]
                    series["t"].append(second)
                    series["rps"].append(slot.requests if slot else 0)
                    series["eps"].append(slot.errors if slot else 0)
                    series["p50_ms"].append(_ms(points[0]))
                    series["p99_ms"].append(_ms(points[1]))
                models.setdefault(model, {"versions": {}})["versions"][version] = {
                    "requests": track.requests,
                    "errors": track.errors,
                    "rps": requests / span,
                    "eps": errors / span,
                    "latency_ms": {"p50": _ms(p50), "p95": _ms(p95), "p99": _ms(p99)},
                    "series": series,
                    "state": track.state,
                }
                counts: dict[int, int] = {}
                for slot in in_window:
                    for bound, n in slot.batches.items():
                        counts[bound] = counts.get(bound, 0) + n
                if counts:
                    batch_sizes.setdefault(model, {})[version] = {str(b): counts[b] for b in sorted(counts)}
        return {"models": models, "batch_sizes": batch_sizes, "window_s": self.window_s}


def _percentiles(groups: Iterable[tuple[int, list[float]]], quantiles: Sequence[float]) -> list[float | None]:
    """Nearest-rank quantiles of reservoirs; each sample weighs requests / kept for its second."""
    weighted = sorted((value, count / len(samples)) for count, samples in groups if samples for value in samples)
    if not weighted:
        return [None] * len(quantiles)
    total = sum(weight for _, weight in weighted)
    result: list[float | None] = []
    for q in quantiles:
        target, seen = q * total * (1 - 1e-12), 0.0  # the tolerance absorbs float sums like 0.95 * 20
        for value, weight in weighted:
            seen += weight
            if seen >= target:
                result.append(value)
                break
        else:
            result.append(weighted[-1][0])
    return result


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def _power_of_two(size: int) -> int:
    return 1 if size <= 1 else 1 << (size - 1).bit_length()
