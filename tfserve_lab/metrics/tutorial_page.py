"""The tutorial's Prometheus families (seconds, Prometheus buckets, richer labels), lent to prometheus-client."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from tfserve_lab.metrics.histograms import Buckets, HistogramCell

__all__ = ["BATCH_SIZES", "SECONDS", "TutorialCollector", "tutorial_families"]

_REQUEST_LABELS = ("model", "version", "signature", "method", "protocol", "status")
_BATCH_LABELS = ("model", "version", "signature")
_LOAD_LABELS = ("model", "version")
SECONDS = Buckets(
    (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0), tf_style=False
)
BATCH_SIZES = Buckets(tuple(float(2**i) for i in range(14)), tf_style=False)

Cells = Mapping[tuple[str, ...], HistogramCell]


def tutorial_families(
    requests: Mapping[tuple[str, ...], int],
    latency: Cells,
    batch_sizes: Cells,
    load_seconds: Mapping[tuple[str, ...], float],
    log_dropped: Mapping[str, int],
) -> list[Metric]:
    """The families the widely copied tutorial queries, from one consistent snapshot of the counts.

    Args:
        requests: Requests answered, by (model, version, signature, method, protocol, status).
        latency: Request latency cells in seconds, keyed as ``requests``.
        batch_sizes: Rows-per-batch cells by (model, version, signature).
        load_seconds: Seconds each (model, version) took to load.
        log_dropped: Sampled requests the request log dropped, by model.

    Returns:
        The families, ready for a prometheus-client collector.
    """
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
            "tensorflow_serving_request_latency", "Request latency in seconds.", _REQUEST_LABELS, SECONDS, latency
        )
    )
    families.append(
        _histogram("tensorflow_serving_batch_size", "Rows per batch run.", _BATCH_LABELS, BATCH_SIZES, batch_sizes)
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


class TutorialCollector(Collector):
    """Lends the tutorial's families to a prometheus-client registry."""

    def __init__(self, families: Callable[[], list[Metric]]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        """The families as they are at this scrape."""
        return iter(self._families())

    def describe(self) -> Iterator[Metric]:
        """The same families: reserves their names, so a clashing metric registered later is refused."""
        return iter(self._families())


def _histogram(name: str, doc: str, labels: tuple[str, ...], buckets: Buckets, cells: Cells) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for key in sorted(cells):
        cumulative, points = 0, []
        for limit, count in zip([*buckets.limits, float("inf")], cells[key].counts, strict=True):
            cumulative += count
            points.append((floatToGoString(limit), cumulative))  # type: ignore[no-untyped-call]  # unannotated upstream
        family.add_metric(key, points, cells[key].total)
    return family
