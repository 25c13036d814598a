"""The facade that magics, widgets and plain Python call: one engine per process.

Every function returns typed results and raises ``TfServeError`` for user
errors; nothing here prints.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfserve_lab.config import ModelConfig, ServerOptions, VersionPolicy
from tfserve_lab.core.types import ModelSpec, RequestContext, VersionStatus
from tfserve_lab.errors import ErrorCode, InvalidArgument, TfServeError
from tfserve_lab.results import ServerInfo, Started, StartResult

__all__ = [
    "EngineStatus",
    "ModelStatus",
    "current",
    "deploy",
    "label",
    "predict",
    "start",
    "status",
    "stop",
    "undeploy",
]

_session: Any = None  # the ServingSession of this process, once started


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


def current() -> Any:
    """The running ServingSession.

    Raises:
        TfServeError: FAILED_PRECONDITION when no engine runs.
    """
    if _session is None or not _session.running:
        raise TfServeError("No engine is running: start one with %tfserve start.", code=ErrorCode.FAILED_PRECONDITION)
    return _session


def start(
    *,
    rest_port: int = 8501,
    grpc_port: int = 8500,
    host: str = "127.0.0.1",
    options: ServerOptions | None = None,
    poll_seconds: float = 1.0,
) -> StartResult:
    """Start the engine in this process (on its own threads); a second call reports the running one.

    Args:
        rest_port: REST port; 0 picks a free one.
        grpc_port: gRPC port; 0 picks a free one.
        host: address to bind; 127.0.0.1 keeps the engine private to this machine.
        options: full server options (flags) instead of the arguments above.
        poll_seconds: how often model repositories are polled for new versions.
    """
    global _session
    from tfserve_lab.server import ServingSession

    if _session is not None and _session.running:
        return _session.start()
    if options is None:
        options = ServerOptions(
            port=grpc_port,
            rest_api_port=rest_port,
            rest_api_enabled=True,
            host=host,
            file_system_poll_wait_seconds=poll_seconds,
            monitoring_enabled=True,
        )
    session = ServingSession(options, discovery=True)
    result = session.start()
    if isinstance(result, Started):
        _session = session
    return result


def stop() -> bool:
    """Stop the engine; returns whether one was running."""
    global _session
    session, _session = _session, None
    if session is None or not session.running:
        return False
    session.stop()
    return True


def status() -> EngineStatus:
    """Ports, models, policies, labels and version states."""
    if _session is None or not _session.running:
        return EngineStatus(None)
    engine = _session.engine
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
    return EngineStatus(_session.info, tuple(models))


def deploy(name: str, base_path: str, *, policy: str | VersionPolicy | None = None) -> ModelStatus:
    """Serve the model repository at ``base_path`` as ``name`` and keep watching it for versions."""
    import os

    parsed = VersionPolicy.parse(policy) if isinstance(policy, str) else policy or VersionPolicy()
    session = current()
    existing = next((m for m in session.engine.models() if m.name == name), None)
    labels = dict(existing.version_labels) if existing is not None else {}
    session.deploy(ModelConfig(name, os.path.abspath(base_path), version_policy=parsed, version_labels=labels))
    return _model_status(name)


def undeploy(name: str, version: int | None = None) -> None:
    """Stop serving a model, or one of its versions."""
    current().undeploy(name, version)


def label(name: str, labels: Mapping[str, int]) -> ModelStatus:
    """Point labels (``{"stable": 1, "canary": 2}``) at AVAILABLE versions of a model."""
    session = current()
    merged = {**session.engine.registry.labels(name), **labels}
    session.set_labels(name, merged)
    return _model_status(name)


def predict(
    name: str,
    data: Any,
    *,
    version: int | None = None,
    label: str | None = None,
    signature: str = "",
) -> np.ndarray | dict[str, np.ndarray]:
    """Run a model in this process's engine: an array for one output, a dict for several."""
    session = current()
    spec = ModelSpec(name, version, label, signature)

    async def run(engine: Any) -> Any:
        with engine.acquire(spec) as handle:
            key, info = handle.signature(signature)
            inputs = _inputs_for(data, info.inputs)
            context = RequestContext("python", time.perf_counter())
            return await engine.predict(handle, key, inputs, context=context)

    result = session.call(run)
    if len(result.outputs) == 1:
        return next(iter(result.outputs.values()))
    return result.outputs


def _inputs_for(data: Any, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Map user data onto a signature's inputs: one array for one input, a dict by alias."""
    from tfserve_lab.core.dtypes import numpy_for_dt

    if isinstance(data, Mapping):
        values = dict(data)
    elif len(inputs) == 1:
        values = {next(iter(inputs)): data}
    else:
        raise InvalidArgument(
            f"The signature has {len(inputs)} inputs ({', '.join(sorted(inputs))}): pass a dict of arrays."
        )
    arrays = {}
    for alias, value in values.items():
        info = inputs.get(alias)
        dtype = numpy_for_dt(info.dtype) if info is not None and info.dtype != "DT_STRING" else None
        arrays[alias] = np.asarray(value, dtype=dtype)
    return arrays


def _model_status(name: str) -> ModelStatus:
    for model in status().models:
        if model.name == name:
            return model
    raise TfServeError(f"Servable not found for request: Latest({name})", code=ErrorCode.NOT_FOUND)
