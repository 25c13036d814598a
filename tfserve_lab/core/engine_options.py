"""EngineOptions: how the engine loads, polls and runs models (what the server's flags resolve to)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tfserve_lab.config import BatchingConfig, RequestLogging
from tfserve_lab.core.request_log import Sink
from tfserve_lab.core.watcher import WatcherOptions

__all__ = ["EngineOptions"]


@dataclass(frozen=True)
class EngineOptions:
    """How the engine loads, polls and runs models."""

    watcher: WatcherOptions = field(default_factory=WatcherOptions)
    batching: BatchingConfig | None = None
    # With batching on: each version batches with its own batching_params.pbtxt, versions without one
    # are not batched, and only the batch threads come from ``batching`` (TF Serving's rule).
    per_model_batching: bool = False
    num_model_threads: int = 4
    # Model calls measured faster than this run on the engine loop instead of a batch thread (a
    # hand-off costs ~0.1 ms; at 1 ms calls the overlap it buys under load is worth more).
    inline_calls_below_s: float = 0.0005
    allow_labels_for_unavailable: bool = False
    # --enable_signature_method_name_check: off (TF Serving's default), classify and regress run on any
    # signature whose inputs and outputs fit, so native TF2 models (all "predict") can be classified.
    signature_method_name_check: bool = False
    # Makes the sink a model's logging_config writes to (the server's PredictionLog files); None: no logging.
    log_sink_factory: Callable[[str, RequestLogging], Sink] | None = None
