"""The one engine of this process: start, stop, status, config reloads, and the running session for the rest of api."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tfserve_lab.config import ModelConfig, ServerOptions
from tfserve_lab.core.types import VersionStatus
from tfserve_lab.errors import ErrorCode, ServableNotFound, TfServeError
from tfserve_lab.interpreter import DEFAULT_SWITCH_INTERVAL_S, restore_switch_interval, set_switch_interval
from tfserve_lab.results import ServerInfo, Started, StartResult

if TYPE_CHECKING:
    from tfserve_lab.core.engine import Engine
    from tfserve_lab.metrics.stats import StatsSnapshot
    from tfserve_lab.server import ServingSession

__all__ = [
    "EngineStatus",
    "ModelStatus",
    "current",
    "live_stats",
    "model_status",
    "reload",
    "require_model",
    "running_engine",
    "start",
    "status",
    "stop",
]

_session: ServingSession | None = None  # the session of this process, once started


@dataclass(frozen=True)
class ModelStatus:
    """One served model: its repository, policy, labels and version states."""

    name: str
    base_path: str
    policy: str
    labels: Mapping[str, int]
    versions: tuple[VersionStatus, ...]


@dataclass(frozen=True)
class EngineStatus:
    """The engine's ports and models (``info`` is None when it is not running)."""

    info: ServerInfo | None
    models: tuple[ModelStatus, ...] = ()


def current() -> ServingSession:
    """The running ServingSession.

    Raises:
        TfServeError: FAILED_PRECONDITION when no engine runs.
    """
    if _session is None or not _session.running:
        raise TfServeError("No engine is running: start one with %tfserve start.", code=ErrorCode.FAILED_PRECONDITION)
    return _session


def running_engine() -> Engine:
    """The running session's engine (what every call of the facade into the engine goes through).

    Raises:
        TfServeError: FAILED_PRECONDITION when no engine runs.
    """
    engine = current().engine
    if engine is None:  # a session that serves has its engine; this guards a stop racing the call
        raise TfServeError("No engine is running: start one with %tfserve start.", code=ErrorCode.FAILED_PRECONDITION)
    return engine


def start(
    *,
    rest_port: int = 8501,
    grpc_port: int = 8500,
    host: str = "127.0.0.1",
    options: ServerOptions | None = None,
    poll_seconds: float = 1.0,
    switch_interval_s: float | None = DEFAULT_SWITCH_INTERVAL_S,
) -> StartResult:
    """Start the engine in this process (on its own threads); a second call reports the running one.

    Args:
        rest_port: REST port; 0 picks a free one.
        grpc_port: gRPC port; 0 picks a free one.
        host: address to bind; 127.0.0.1 keeps the engine private to this machine.
        options: full server options (flags) instead of the arguments above.
        poll_seconds: how often model repositories are polled for new versions.
        switch_interval_s: the interpreter's GIL switch interval while the engine runs, so that a busy
            cell cannot hold the engine's threads off for long (``sys.setswitchinterval``; the previous
            value comes back on ``stop``); None leaves the interpreter's setting alone.
    """
    global _session
    from tfserve_lab.server import ServingSession

    if _session is not None and _session.running:
        return _session.start()
    if options is None:
        options = ServerOptions(
            port=grpc_port,
            grpc_port_enabled=True,
            rest_api_port=rest_port,
            rest_api_enabled=True,
            host=host,
            file_system_poll_wait_seconds=poll_seconds,
            monitoring_enabled=True,
            # TensorFlow's profiler server listens on all interfaces: opt-in in notebooks.
            enable_profiler=False,
        )
    session = ServingSession(options, discovery=True)
    result = session.start()
    if isinstance(result, Started):
        _session = session
        if switch_interval_s is not None:
            set_switch_interval(switch_interval_s)
    return result


def stop() -> bool:
    """Stop the engine; returns whether one was running."""
    global _session
    session, _session = _session, None
    if session is None or not session.running:
        return False
    try:
        session.stop()
    finally:
        restore_switch_interval()
    return True


def status() -> EngineStatus:
    """Ports, models, policies, labels and version states."""
    session = _session
    if session is None or not session.running or session.engine is None:
        return EngineStatus(None)
    engine = session.engine
    models = []
    for model in engine.models():
        try:
            versions = tuple(engine.status(model.name))
        except TfServeError:
            versions = ()
        models.append(
            ModelStatus(
                model.name, model.base_path, model.version_policy.describe(), dict(model.version_labels), versions
            )
        )
    return EngineStatus(session.info, tuple(models))


def live_stats() -> StatsSnapshot | None:
    """Requests/s, errors, latency and batch sizes per model and version over the last seconds (None: not kept).

    Raises:
        TfServeError: FAILED_PRECONDITION when no engine runs.
    """
    stats = current().stats
    return stats.snapshot() if stats is not None else None


def reload(models: Sequence[ModelConfig]) -> EngineStatus:
    """Serve exactly ``models`` (a ``model_config_list``), as a config reload does; blocks until they load."""
    current().reload(models)
    return status()


def require_model(name: str) -> ModelConfig:
    """The served model ``name``'s config.

    Raises:
        ServableNotFound: In TF Serving's words, when no model of that name is served.
    """
    model = next((m for m in running_engine().models() if m.name == name), None)
    if model is None:
        raise ServableNotFound(f"Servable not found for request: Latest({name})")
    return model


def model_status(name: str) -> ModelStatus:
    """The status of served model ``name``.

    Raises:
        ServableNotFound: In TF Serving's words, when no model of that name is served.
    """
    for model in status().models:
        if model.name == name:
            return model
    raise ServableNotFound(f"Servable not found for request: Latest({name})")
