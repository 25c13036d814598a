"""Prometheus metrics of one engine: TF Serving's own families, byte for byte, and the tutorial's names."""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from tfserve_lab.core.events import BatchRun, EngineEvent, RequestDone, RequestLogDropped, VersionChanged
from tfserve_lab.core.types import VersionState
from tfserve_lab.errors import ErrorCode

__all__ = ["CONTENT_TYPE", "EngineMetrics", "exponential_buckets"]

CONTENT_TYPE = "text/plain"
"""The Content-Type TF Serving's exporter answers with."""

ModelPath = Callable[[str, int], str]
"""Maps (model, version) to the version's directory: TF's load and warmup metrics are labelled by it."""


def exponential_buckets(scale: float, growth: float, count: int) -> tuple[float, ...]:
    """TF's ``monitoring::Buckets::Exponential`` limits, without the final DBL_MAX.

    Args:
        scale: The first limit.
        growth: The factor between two limits.
        count: How many limits.

    Returns:
        The limits, made by repeated multiplication as TF makes them, so they print like TF's.
    """
    limits: list[float] = []
    bound = float(scale)
    for _ in range(count):
        limits.append(bound)
        bound *= growth
    return tuple(limits)


@dataclass(frozen=True)
class _Buckets:
    """Finite upper limits of a histogram; a last +Inf bucket is implied."""

    limits: tuple[float, ...]
    # TF's Histogram::Add uses upper_bound: a value equal to a limit lands in the *next* bucket.
    # Prometheus' `le` is "<=". Each page keeps its own exporter's meaning.
    tf_style: bool

    def index(self, value: float) -> int:
        if self.tf_style:
            return bisect.bisect_right(self.limits, value)
        return bisect.bisect_left(self.limits, value)


class _RequestCells:
    """The label sets one kind of request (model, version, signature, method, protocol, status) updates,
    computed once, and its histogram cells once they exist (TF prints only cells that were filled)."""

    __slots__ = ("count_key", "latency", "latency_key", "runtime", "runtime_key", "seconds", "tutorial_key")

    def __init__(self, event: RequestDone) -> None:
        # TF Serving's REST handler labels API with the URL's verb ("predict"), gRPC with the RPC
        # name ("Predict"); in-process calls have no TF Serving counterpart and read like gRPC.
        entrypoint = _ENTRYPOINTS.get(event.protocol, event.protocol.upper())
        api = event.method if entrypoint == "REST" else _camel(event.method)
        version = "" if event.version is None else str(event.version)
        status = event.code.name
        self.count_key = (event.model, status)
        self.latency_key = (event.model, api, entrypoint)
        self.runtime_key = (event.model, _camel(event.method), "TF1")
        self.tutorial_key = (event.model, version, event.signature, event.method, event.protocol, status)
        self.latency: _Hist | None = None
        self.runtime: _Hist | None = None
        self.seconds: _Hist | None = None


class _Hist:
    """Per-bucket (not cumulative) counts and the sum of one histogram cell."""

    __slots__ = ("counts", "total")

    def __init__(self, size: int) -> None:
        self.counts = [0] * size
        self.total = 0.0

    def copy(self) -> _Hist:
        twin = _Hist(0)
        twin.counts, twin.total = list(self.counts), self.total
        return twin


@dataclass(frozen=True)
class _TfMetric:
    """One TF monitoring metric: its internal name, label names and, for a Sampler, its buckets."""

    name: str
    labels: tuple[str, ...]
    buckets: _Buckets | None = None


_LATENCY_US = _Buckets(exponential_buckets(10, 1.8, 33), tf_style=True)
_BATCHING = _Buckets(exponential_buckets(1, 2, 14), tf_style=True)
_SERVING = "/tensorflow/serving/"
_BATCHING_SESSION = _SERVING + "batching_session/"

_REQUEST_COUNT = _TfMetric(_SERVING + "request_count", ("model_name", "status"))
_REQUEST_LATENCY = _TfMetric(_SERVING + "request_latency", ("model_name", "API", "entrypoint"), _LATENCY_US)
_RUNTIME_LATENCY = _TfMetric(_SERVING + "runtime_latency", ("model_name", "API", "runtime"), _LATENCY_US)
_EXAMPLE_COUNTS = _TfMetric(
    _SERVING + "request_example_counts", ("model",), _Buckets(exponential_buckets(1, 2, 15), tf_style=True)
)
_EXAMPLE_COUNT_TOTAL = _TfMetric(_SERVING + "request_example_count_total", ("model",))
_WARMUP_LATENCY = _TfMetric(_SERVING + "model_warmup_latency", ("model_path", "status"), _LATENCY_US)
_INPUT_BATCH_SIZE = _TfMetric(_BATCHING_SESSION + "input_batch_size", (), _BATCHING)
_PROCESSED_BATCH_SIZE = _TfMetric(_BATCHING_SESSION + "processed_batch_size", (), _BATCHING)
_PADDING_SIZE = _TfMetric(_BATCHING_SESSION + "padding_size", ("execution_batch_size",), _BATCHING)
_QUEUING_LATENCY = _TfMetric(
    _BATCHING_SESSION + "queuing_latency",
    ("thread_pool_name",),
    _Buckets(exponential_buckets(100, 1.2, 52), tf_style=True),
)
_WRAPPED_RUN_COUNT = _TfMetric(_BATCHING_SESSION + "wrapped_run_count", ())
_LOAD_ATTEMPT_COUNT = _TfMetric("/tensorflow/cc/saved_model/load_attempt_count", ("model_path", "status"))
# TF's loader keeps load latency as a counter of microseconds, not as a histogram.
_LOAD_LATENCY = _TfMetric("/tensorflow/cc/saved_model/load_latency", ("model_path",))

# The tutorial's families. Seconds, Prometheus-style buckets, our richer labels.
_REQUEST_LABELS = ("model", "version", "signature", "method", "protocol", "status")
_BATCH_LABELS = ("model", "version", "signature")
_LOAD_LABELS = ("model", "version")
_SECONDS = _Buckets(
    (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0), tf_style=False
)
_BATCH_SIZES = _Buckets(tuple(float(2**i) for i in range(14)), tf_style=False)

_ENTRYPOINTS = {"rest": "REST", "grpc": "GRPC"}
_EXAMPLE_METHODS = frozenset({"classify", "regress", "multi_inference"})


class EngineMetrics:
    """Counts engine events into one engine's Prometheus page.

    ``render()`` is the body of GET /monitoring/prometheus/metrics: first TF Serving's families as
    TF Serving's exporter prints them (``:tensorflow:serving:request_count{model_name="m",status="OK"} 3``,
    no HELP, no ``_total``), then the families the widely copied tutorial queries, written by
    prometheus-client from ``registry`` (this engine's own registry, never the global one).

    All counts live in plain dicts behind one lock: events arrive on the loop thread (requests),
    the batch threads (batches) and the watcher thread (versions), and a scrape must see one
    consistent moment.
    """

    def __init__(self, *, thread_pool_name: str = "batch_threads", model_path: ModelPath | None = None) -> None:
        """Create the metrics of one engine.

        Args:
            thread_pool_name: The batching thread pool's name, the ``thread_pool_name`` label of
                ``:tensorflow:serving:batching_session:queuing_latency``.
            model_path: Maps (model, version) to the version directory TF labels load metrics with;
                ``"<model>/<version>"`` when not given.
        """
        self._thread_pool_name = thread_pool_name
        self._model_path: ModelPath = model_path or (lambda model, version: f"{model}/{version}")
        self._lock = threading.Lock()
        self._counters: dict[_TfMetric, dict[tuple[str, ...], int]] = {}
        self._samplers: dict[_TfMetric, dict[tuple[str, ...], _Hist]] = {}
        self._requests: dict[tuple[str, ...], int] = {}
        self._request_cells: dict[tuple[object, ...], _RequestCells] = {}
        self._latency: dict[tuple[str, ...], _Hist] = {}
        self._batch_sizes: dict[tuple[str, ...], _Hist] = {}
        self._load_seconds: dict[tuple[str, ...], float] = {}
        self._states: dict[tuple[str, int], VersionState] = {}
        self._log_dropped: dict[str, int] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_TutorialCollector(self._tutorial_families))

    # -- events (any thread) ---------------------------------------------------

    def observe(self, event: EngineEvent) -> None:
        """Count one engine event; pass this method to ``Engine.add_observer``.

        Args:
            event: A ``RequestDone``, ``BatchRun`` or ``VersionChanged``.
        """
        if isinstance(event, RequestDone):
            self._on_request(event)
        elif isinstance(event, BatchRun):
            self._on_batch(event)
        elif isinstance(event, VersionChanged):
            self._on_version(event)
        elif isinstance(event, RequestLogDropped):
            with self._lock:
                self._log_dropped[event.model] = self._log_dropped.get(event.model, 0) + 1

    def _on_request(self, event: RequestDone) -> None:
        key = (event.model, event.version, event.signature, event.method, event.protocol, event.code)
        with self._lock:
            cells = self._request_cells.get(key)
            if cells is None:
                cells = self._request_cells[key] = _RequestCells(event)
            counts = self._counters.setdefault(_REQUEST_COUNT, {})
            counts[cells.count_key] = counts.get(cells.count_key, 0) + 1
            if event.code is ErrorCode.OK:  # TF Serving records request latency for successful requests only
                if cells.latency is None:
                    cells.latency = self._hist(_REQUEST_LATENCY, cells.latency_key)
                _fill(cells.latency, _LATENCY_US, _micros(event.latency_s))
                if event.runtime_s > 0:
                    if cells.runtime is None:
                        cells.runtime = self._hist(_RUNTIME_LATENCY, cells.runtime_key)
                    _fill(cells.runtime, _LATENCY_US, _micros(event.runtime_s))
            if event.examples > 0 and event.method in _EXAMPLE_METHODS:  # tf.Example inputs only, as in TF
                self._sample(_EXAMPLE_COUNTS, (event.model,), event.examples)
                self._count(_EXAMPLE_COUNT_TOTAL, (event.model,), event.examples)
            self._requests[cells.tutorial_key] = self._requests.get(cells.tutorial_key, 0) + 1
            if cells.seconds is None:
                cells.seconds = self._latency.setdefault(cells.tutorial_key, _Hist(len(_SECONDS.limits) + 1))
            _fill(cells.seconds, _SECONDS, event.latency_s)

    def _hist(self, metric: _TfMetric, labels: tuple[str, ...]) -> _Hist:
        assert metric.buckets is not None
        return self._samplers.setdefault(metric, {}).setdefault(labels, _Hist(len(metric.buckets.limits) + 1))

    def _on_batch(self, event: BatchRun) -> None:
        padding = max(0, event.padded_size - event.input_size)
        with self._lock:
            self._sample(_INPUT_BATCH_SIZE, (), event.input_size)
            self._sample(_PROCESSED_BATCH_SIZE, (), event.padded_size)
            self._sample(_PADDING_SIZE, (str(event.padded_size),), padding)
            self._sample(_QUEUING_LATENCY, (self._thread_pool_name,), _micros(event.queuing_s))
            self._count(_WRAPPED_RUN_COUNT, ())
            _add(self._batch_sizes, (event.model, str(event.version), event.signature), _BATCH_SIZES, event.input_size)

    def _on_version(self, event: VersionChanged) -> None:
        path = self._model_path(event.model, event.version)
        with self._lock:
            previous = self._states.get((event.model, event.version))
            self._states[(event.model, event.version)] = event.state
            if event.state is VersionState.AVAILABLE and previous is not VersionState.AVAILABLE:
                self._count(_LOAD_ATTEMPT_COUNT, (path, "success"))
                self._count(_LOAD_LATENCY, (path,), _micros(event.load_latency_s))
                if event.warmup_latency_s > 0:
                    self._sample(_WARMUP_LATENCY, (path, "OK"), _micros(event.warmup_latency_s))
                self._load_seconds[(event.model, str(event.version))] = event.load_latency_s
            elif event.error and previous is VersionState.LOADING:
                # A failed attempt is the move out of LOADING with an error; later events repeat the error.
                self._count(_LOAD_ATTEMPT_COUNT, (path, "fail"))

    def _count(self, metric: _TfMetric, labels: tuple[str, ...], amount: int = 1) -> None:
        cells = self._counters.setdefault(metric, {})
        cells[labels] = cells.get(labels, 0) + amount

    def _sample(self, metric: _TfMetric, labels: tuple[str, ...], value: float) -> None:
        assert metric.buckets is not None
        _add(self._samplers.setdefault(metric, {}), labels, metric.buckets, value)

    # -- exposition (scrape thread) --------------------------------------------

    def render(self) -> bytes:
        """The metrics page: TF Serving's families, then the tutorial's (Prometheus text format 0.0.4).

        Returns:
            UTF-8 text, each line ending in a newline.
        """
        return self.render_tf_serving().encode() + generate_latest(self.registry)

    def render_tf_serving(self) -> str:
        """TF Serving's families only, exactly as ``tensorflow_model_server`` prints them.

        Returns:
            The page: metrics sorted by TF's internal name, only those with a cell, ``# TYPE`` lines
            and no ``# HELP``, every bucket (TF's ``<`` limits, last ``+Inf``), numbers as ``%g``.
        """
        with self._lock:
            counters = {metric: dict(cells) for metric, cells in self._counters.items()}
            samplers = {metric: {k: h.copy() for k, h in cells.items()} for metric, cells in self._samplers.items()}
        lines: list[str] = []
        for metric in sorted([*counters, *samplers], key=lambda m: m.name):
            name = _prometheus_name(metric.name)
            if metric.buckets is None:
                lines.append(f"# TYPE {name} counter")
                cells = counters[metric]
                lines.extend(f"{name}{{{_labels(metric.labels, key)}}} {cells[key]}" for key in sorted(cells))
                continue
            lines.append(f"# TYPE {name} histogram")
            limits = [*(f"{limit:g}" for limit in metric.buckets.limits), "+Inf"]
            hists = samplers[metric]
            for key in sorted(hists):
                labels = _labels(metric.labels, key)
                prefix = f"{name}_bucket{{{labels}{',' if labels else ''}"
                cumulative = 0
                for limit, count in zip(limits, hists[key].counts, strict=True):
                    cumulative += count
                    lines.append(f'{prefix}le="{limit}"}} {cumulative}')
                lines.append(f"{name}_sum{{{labels}}} {hists[key].total:g}")
                lines.append(f"{name}_count{{{labels}}} {cumulative}")
        return "\n".join(lines) + "\n"

    def _tutorial_families(self) -> list[Metric]:
        with self._lock:
            requests = dict(self._requests)
            latency = {key: hist.copy() for key, hist in self._latency.items()}
            batch_sizes = {key: hist.copy() for key, hist in self._batch_sizes.items()}
            load_seconds = dict(self._load_seconds)
            log_dropped = dict(self._log_dropped)
        # prometheus-client writes a counter `x` as `x_total`, yet the tutorial queries
        # rate(tensorflow_serving_request_count[1m]): an untyped family keeps the literal sample name
        # (rate() works on it) without claiming a gauge's meaning for a value that only grows.
        count = UnknownMetricFamily(
            "tensorflow_serving_request_count", "Requests answered, by outcome (a counter).", labels=_REQUEST_LABELS
        )
        for key in sorted(requests):
            count.add_metric(key, requests[key])
        families: list[Metric] = [count]
        families.append(
            _histogram(
                "tensorflow_serving_request_latency", "Request latency in seconds.", _REQUEST_LABELS, _SECONDS, latency
            )
        )
        families.append(
            _histogram("tensorflow_serving_batch_size", "Rows per batch run.", _BATCH_LABELS, _BATCH_SIZES, batch_sizes)
        )
        # A gauge per version (not a histogram) so the tutorial's bare name selects a sample.
        load = GaugeMetricFamily(
            "tensorflow_serving_model_load_latency_seconds", "Seconds the version took to load.", labels=_LOAD_LABELS
        )
        for key in sorted(load_seconds):
            load.add_metric(key, load_seconds[key])
        dropped = CounterMetricFamily(
            "tfserve_lab_request_log_dropped",
            "Sampled requests not logged because the log's queue was full (tfserve-lab).",
            labels=("model",),
        )
        for model in sorted(log_dropped):
            dropped.add_metric((model,), log_dropped[model])
        families.append(load)
        families.append(dropped)
        return families


class _TutorialCollector(Collector):
    """Lends the tutorial's families to a prometheus-client registry."""

    def __init__(self, families: Callable[[], list[Metric]]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families())

    def describe(self) -> Iterator[Metric]:
        # Reserves the names in the registry, so a clashing metric registered later is refused.
        return iter(self._families())


def _fill(hist: _Hist, buckets: _Buckets, value: float) -> None:
    hist.counts[buckets.index(value)] += 1
    hist.total += value


def _add(cells: dict[tuple[str, ...], _Hist], key: tuple[str, ...], buckets: _Buckets, value: float) -> None:
    hist = cells.get(key)
    if hist is None:
        hist = cells[key] = _Hist(len(buckets.limits) + 1)
    hist.counts[buckets.index(value)] += 1
    hist.total += value


def _histogram(
    name: str, doc: str, labels: tuple[str, ...], buckets: _Buckets, cells: dict[tuple[str, ...], _Hist]
) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for key in sorted(cells):
        cumulative, points = 0, []
        for limit, count in zip([*buckets.limits, float("inf")], cells[key].counts, strict=True):
            cumulative += count
            points.append((floatToGoString(limit), cumulative))
        family.add_metric(key, points, cells[key].total)
    return family


def _prometheus_name(name: str) -> str:
    """TF's GetPrometheusMetricName: every character outside [a-zA-Z0-9_] becomes ':'."""
    converted = re.sub(r"[^a-zA-Z0-9_]", ":", name)
    return f"_{converted}" if converted[:1].isdigit() else converted


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    return ",".join(f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True))


def _escape(value: str) -> str:
    # TF escapes `\` and `"`; it leaves newlines raw, which breaks the page, so we escape them too.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _micros(seconds: float) -> int:
    # TF measures with NowMicros(): whole microseconds.
    return max(0, round(seconds * 1e6))


def _camel(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_"))
