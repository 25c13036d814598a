"""TF Serving's metric families and their text, as tensorflow_model_server's Prometheus exporter prints it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from tfserve_lab.metrics.histograms import Buckets, HistogramCell, exponential_buckets

__all__ = [
    "BATCHING",
    "EXAMPLE_COUNTS",
    "EXAMPLE_COUNT_TOTAL",
    "INPUT_BATCH_SIZE",
    "LATENCY_US",
    "LOAD_ATTEMPT_COUNT",
    "LOAD_LATENCY",
    "PADDING_SIZE",
    "PROCESSED_BATCH_SIZE",
    "QUEUING_LATENCY",
    "REQUEST_COUNT",
    "REQUEST_LATENCY",
    "RUNTIME_LATENCY",
    "WARMUP_LATENCY",
    "WRAPPED_RUN_COUNT",
    "TfMetric",
    "render_tf_serving_page",
]


@dataclass(frozen=True)
class TfMetric:
    """One TF monitoring metric: its internal name, label names and, for a Sampler, its buckets."""

    name: str
    labels: tuple[str, ...]
    buckets: Buckets | None = None


LATENCY_US = Buckets(exponential_buckets(10, 1.8, 33), tf_style=True)
BATCHING = Buckets(exponential_buckets(1, 2, 14), tf_style=True)
_SERVING = "/tensorflow/serving/"
_BATCHING_SESSION = _SERVING + "batching_session/"

REQUEST_COUNT = TfMetric(_SERVING + "request_count", ("model_name", "status"))
REQUEST_LATENCY = TfMetric(_SERVING + "request_latency", ("model_name", "API", "entrypoint"), LATENCY_US)
RUNTIME_LATENCY = TfMetric(_SERVING + "runtime_latency", ("model_name", "API", "runtime"), LATENCY_US)
EXAMPLE_COUNTS = TfMetric(
    _SERVING + "request_example_counts", ("model",), Buckets(exponential_buckets(1, 2, 15), tf_style=True)
)
EXAMPLE_COUNT_TOTAL = TfMetric(_SERVING + "request_example_count_total", ("model",))
WARMUP_LATENCY = TfMetric(_SERVING + "model_warmup_latency", ("model_path", "status"), LATENCY_US)
INPUT_BATCH_SIZE = TfMetric(_BATCHING_SESSION + "input_batch_size", (), BATCHING)
PROCESSED_BATCH_SIZE = TfMetric(_BATCHING_SESSION + "processed_batch_size", (), BATCHING)
PADDING_SIZE = TfMetric(_BATCHING_SESSION + "padding_size", ("execution_batch_size",), BATCHING)
QUEUING_LATENCY = TfMetric(
    _BATCHING_SESSION + "queuing_latency",
    ("thread_pool_name",),
    Buckets(exponential_buckets(100, 1.2, 52), tf_style=True),
)
WRAPPED_RUN_COUNT = TfMetric(_BATCHING_SESSION + "wrapped_run_count", ())
LOAD_ATTEMPT_COUNT = TfMetric("/tensorflow/cc/saved_model/load_attempt_count", ("model_path", "status"))
# TF's loader keeps load latency as a counter of microseconds, not as a histogram.
LOAD_LATENCY = TfMetric("/tensorflow/cc/saved_model/load_latency", ("model_path",))


def render_tf_serving_page(
    counters: Mapping[TfMetric, Mapping[tuple[str, ...], int]],
    samplers: Mapping[TfMetric, Mapping[tuple[str, ...], HistogramCell]],
) -> str:
    """TF Serving's families exactly as ``tensorflow_model_server`` prints them.

    Args:
        counters: Counter cells by metric, then by label values.
        samplers: Histogram cells by metric, then by label values.

    Returns:
        The page: metrics sorted by TF's internal name, only those with a cell, ``# TYPE`` lines
        and no ``# HELP``, every bucket (TF's ``<`` limits, last ``+Inf``), numbers as ``%g``.
    """
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


def _prometheus_name(name: str) -> str:
    """TF's GetPrometheusMetricName: every character outside [a-zA-Z0-9_] becomes ':'."""
    converted = re.sub(r"[^a-zA-Z0-9_]", ":", name)
    return f"_{converted}" if converted[:1].isdigit() else converted


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    return ",".join(f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True))


def _escape(value: str) -> str:
    # TF escapes `\` and `"`; it leaves newlines raw, which breaks the page, so we escape them too.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
