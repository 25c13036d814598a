"""Typed events the engine emits; metrics and statistics observe them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tfserve_lab.core.types import VersionState
from tfserve_lab.errors import ErrorCode

__all__ = ["BatchRun", "EngineEvent", "LoadProgress", "Observer", "RequestDone", "RequestLogDropped", "VersionChanged"]


@dataclass(slots=True)  # not frozen: one per request, and a frozen init costs three times as much; read-only
class RequestDone:
    """One request answered (or refused) by the engine; observers only read it."""

    model: str
    version: int | None
    signature: str
    method: str
    protocol: str
    code: ErrorCode
    latency_s: float
    runtime_s: float = 0.0
    examples: int = 0


@dataclass(frozen=True)
class BatchRun:
    """One model call made by the batcher."""

    model: str
    version: int
    signature: str
    input_size: int
    padded_size: int
    queuing_s: float
    runtime_s: float


@dataclass(frozen=True)
class VersionChanged:
    """A version moved to a new state (load latency set when it became AVAILABLE)."""

    model: str
    version: int
    state: VersionState
    error: str = ""
    load_latency_s: float = 0.0
    warmup_latency_s: float = 0.0


@dataclass(frozen=True)
class LoadProgress:
    """A loading version got further: ``done`` of ``total`` steps of ``stage`` (``"warmup"``)."""

    model: str
    version: int
    stage: str
    done: int
    total: int


@dataclass(frozen=True)
class RequestLogDropped:
    """A sampled request of ``model`` was not logged: its sink's queue was full."""

    model: str


EngineEvent = RequestDone | BatchRun | VersionChanged | LoadProgress | RequestLogDropped
Observer = Callable[[EngineEvent], None]
