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
    "k8s",
    "label",
    "predict",
    "shadow",
    "shadow_records",
    "split",
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


def split(name: str, weights: Mapping[int | str, int] | None) -> dict[int, int]:
    """Route requests for ``name`` that name no version by weight (``{1: 90, 2: 10}``; labels work too).

    None ends the split. Explicit versions and labels are never re-routed; a ``model-version``
    header pins a version.
    """
    from tfserve_lab.core.router import TrafficSplit

    session = current()
    engine = session.engine
    if name not in {m.name for m in engine.models()}:
        raise TfServeError(f"Servable not found for request: Latest({name})", code=ErrorCode.NOT_FOUND)
    if weights is None:
        engine.router.set_split(name, None)
        return {}
    labels = engine.registry.labels(name)
    resolved: dict[int, int] = {}
    available = {s.version for s in engine.status(name) if s.state.name == "AVAILABLE"}
    for key, weight in weights.items():
        version = _version_of(key, labels)
        if version not in available:
            raise TfServeError(
                f"Version {version} of {name} is not AVAILABLE; split only between served versions.",
                code=ErrorCode.FAILED_PRECONDITION,
            )
        resolved[version] = int(weight)
    engine.router.set_split(name, TrafficSplit(resolved))
    return resolved


def shadow(name: str, candidate: int | str | None) -> int | None:
    """Also send a copy of ``name``'s live predict traffic to ``candidate`` (None ends it); answers are recorded."""
    engine = current().engine
    if candidate is None:
        engine.router.set_shadow(name, None)
        return None
    version = _version_of(candidate, engine.registry.labels(name))
    engine.router.set_shadow(name, version)
    return version


def shadow_records(name: str) -> list[Any]:
    """The recorded (live, shadow) answer pairs of a model, oldest first."""
    return list(current().engine.shadow_log.get(name, ()))


def k8s(
    name: str | None = None,
    *,
    out: str | None = None,
    replicas: int = 1,
    gpu: bool = False,
    namespace: str = "ml-serving",
    image: str | None = None,
    model_uri: str = "pvc://models",
    kserve: bool = False,
) -> tuple[list[str], str]:
    """Write Kubernetes manifests running this engine's exact config on tensorflow/serving.

    Returns:
        The files written and the instructions to copy the model versions to ``model_uri``.
    """
    from tfserve_lab.deploy.kubernetes import render_manifests, write_manifests
    from tfserve_lab.deploy.options import K8sOptions, TrafficSplit, dns_label
    from tfserve_lab.deploy.storage import copy_instructions

    session = current()
    models = session.engine.models()
    if not models:
        raise TfServeError("The engine serves no models yet: deploy one first.", code=ErrorCode.FAILED_PRECONDITION)
    name = name or dns_label(models[0].name)
    options = K8sOptions(
        name=name, namespace=namespace, replicas=replicas, gpu=gpu, image=image, model_uri=model_uri, kserve=kserve
    )
    splits = [
        TrafficSplit(m.name, weights, labels=m.version_labels)
        for m in models
        if (weights := session.engine.router.split(m.name))
    ]
    manifests = render_manifests(
        models,
        options,
        batching=session.batching,
        monitoring_path=session.monitoring.path if session.monitoring.enable else None,
        splits=splits,
    )
    paths = write_manifests(manifests, out or f"k8s-{name}")
    return [str(p) for p in paths], copy_instructions(models, model_uri, namespace=namespace)


def _version_of(key: int | str, labels: Mapping[str, int]) -> int:
    if isinstance(key, int):
        return key
    if key.isdigit():
        return int(key)
    if key in labels:
        return labels[key]
    raise InvalidArgument(f"Unrecognized servable version label: {key}")


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
