"""EngineMetrics: counts one engine's events into TF Serving's metrics page and the tutorial's families."""

from __future__ import annotations

import threading
from collections.abc import Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric

from tfserve_lab.core.events import BatchRun, EngineEvent, RequestDone, RequestLogDropped, VersionChanged
from tfserve_lab.core.types import VersionState
from tfserve_lab.errors import ErrorCode
from tfserve_lab.metrics.histograms import HistogramCell, add_sample, fill
from tfserve_lab.metrics.tf_serving_page import (
    EXAMPLE_COUNT_TOTAL,
    EXAMPLE_COUNTS,
    INPUT_BATCH_SIZE,
    LATENCY_US,
    LOAD_ATTEMPT_COUNT,
    LOAD_LATENCY,
    PADDING_SIZE,
    PROCESSED_BATCH_SIZE,
    QUEUING_LATENCY,
    REQUEST_COUNT,
    REQUEST_LATENCY,
    RUNTIME_LATENCY,
    WARMUP_LATENCY,
    WRAPPED_RUN_COUNT,
    TfMetric,
    render_tf_serving_page,
)
from tfserve_lab.metrics.tutorial_page import BATCH_SIZES, SECONDS, TutorialCollector, tutorial_families

__all__ = ["CONTENT_TYPE", "EngineMetrics", "ModelPath"]

CONTENT_TYPE = "text/plain"
"""The Content-Type TF Serving's exporter answers with."""

ModelPath = Callable[[str, int], str]
"""Maps (model, version) to the version's directory: TF's load and warmup metrics are labelled by it."""

_ENTRYPOINTS = {"rest": "REST", "grpc": "GRPC"}
_EXAMPLE_METHODS = frozenset({"classify", "regress", "multi_inference"})


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
        self.latency: HistogramCell | None = None
        self.runtime: HistogramCell | None = None
        self.seconds: HistogramCell | None = None


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
        self._counters: dict[TfMetric, dict[tuple[str, ...], int]] = {}
        self._samplers: dict[TfMetric, dict[tuple[str, ...], HistogramCell]] = {}
        self._requests: dict[tuple[str, ...], int] = {}
        self._request_cells: dict[tuple[object, ...], _RequestCells] = {}
        self._latency: dict[tuple[str, ...], HistogramCell] = {}
        self._batch_sizes: dict[tuple[str, ...], HistogramCell] = {}
        self._load_seconds: dict[tuple[str, ...], float] = {}
        self._states: dict[tuple[str, int], VersionState] = {}
        self._log_dropped: dict[str, int] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(TutorialCollector(self._tutorial_families))

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
            counts = self._counters.setdefault(REQUEST_COUNT, {})
            counts[cells.count_key] = counts.get(cells.count_key, 0) + 1
            if event.code is ErrorCode.OK:  # TF Serving records request latency for successful requests only
                if cells.latency is None:
                    cells.latency = self._cell(REQUEST_LATENCY, cells.latency_key)
                fill(cells.latency, LATENCY_US, _micros(event.latency_s))
                if event.runtime_s > 0:
                    if cells.runtime is None:
                        cells.runtime = self._cell(RUNTIME_LATENCY, cells.runtime_key)
                    fill(cells.runtime, LATENCY_US, _micros(event.runtime_s))
            if event.examples > 0 and event.method in _EXAMPLE_METHODS:  # tf.Example inputs only, as in TF
                self._sample(EXAMPLE_COUNTS, (event.model,), event.examples)
                self._count(EXAMPLE_COUNT_TOTAL, (event.model,), event.examples)
            self._requests[cells.tutorial_key] = self._requests.get(cells.tutorial_key, 0) + 1
            if cells.seconds is None:
                cells.seconds = self._latency.setdefault(cells.tutorial_key, HistogramCell(len(SECONDS.limits) + 1))
            fill(cells.seconds, SECONDS, event.latency_s)

    def _cell(self, metric: TfMetric, labels: tuple[str, ...]) -> HistogramCell:
        assert metric.buckets is not None
        return self._samplers.setdefault(metric, {}).setdefault(labels, HistogramCell(len(metric.buckets.limits) + 1))

    def _on_batch(self, event: BatchRun) -> None:
        padding = max(0, event.padded_size - event.input_size)
        with self._lock:
            self._sample(INPUT_BATCH_SIZE, (), event.input_size)
            self._sample(PROCESSED_BATCH_SIZE, (), event.padded_size)
            self._sample(PADDING_SIZE, (str(event.padded_size),), padding)
            self._sample(QUEUING_LATENCY, (self._thread_pool_name,), _micros(event.queuing_s))
            self._count(WRAPPED_RUN_COUNT, ())
            add_sample(
                self._batch_sizes, (event.model, str(event.version), event.signature), BATCH_SIZES, event.input_size
            )

    def _on_version(self, event: VersionChanged) -> None:
        path = self._model_path(event.model, event.version)
        with self._lock:
            previous = self._states.get((event.model, event.version))
            self._states[(event.model, event.version)] = event.state
            if event.state is VersionState.AVAILABLE and previous is not VersionState.AVAILABLE:
                self._count(LOAD_ATTEMPT_COUNT, (path, "success"))
                self._count(LOAD_LATENCY, (path,), _micros(event.load_latency_s))
                if event.warmup_latency_s > 0:
                    self._sample(WARMUP_LATENCY, (path, "OK"), _micros(event.warmup_latency_s))
                self._load_seconds[(event.model, str(event.version))] = event.load_latency_s
            elif event.error and previous is VersionState.LOADING:
                # A failed attempt is the move out of LOADING with an error; later events repeat the error.
                self._count(LOAD_ATTEMPT_COUNT, (path, "fail"))

    def _count(self, metric: TfMetric, labels: tuple[str, ...], amount: int = 1) -> None:
        cells = self._counters.setdefault(metric, {})
        cells[labels] = cells.get(labels, 0) + amount

    def _sample(self, metric: TfMetric, labels: tuple[str, ...], value: float) -> None:
        assert metric.buckets is not None
        add_sample(self._samplers.setdefault(metric, {}), labels, metric.buckets, value)

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
        return render_tf_serving_page(counters, samplers)

    def _tutorial_families(self) -> list[Metric]:
        with self._lock:
            requests = dict(self._requests)
            latency = {key: cell.copy() for key, cell in self._latency.items()}
            batch_sizes = {key: cell.copy() for key, cell in self._batch_sizes.items()}
            load_seconds = dict(self._load_seconds)
            log_dropped = dict(self._log_dropped)
        return tutorial_families(requests, latency, batch_sizes, load_seconds, log_dropped)


def _micros(seconds: float) -> int:
    # TF measures with NowMicros(): whole microseconds.
    return max(0, round(seconds * 1e6))


def _camel(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_"))
