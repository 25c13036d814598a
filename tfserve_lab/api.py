"""The facade that magics, widgets and plain Python call: one engine per process.

Every function returns typed results and raises ``TfServeError`` for user
errors; nothing here prints.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tfserve_lab.config import BatchingConfig, ModelConfig, ServerOptions, VersionPolicy
from tfserve_lab.core.types import ModelSpec, RequestContext, VersionStatus
from tfserve_lab.errors import ErrorCode, InvalidArgument, TfServeError
from tfserve_lab.interpreter import DEFAULT_SWITCH_INTERVAL_S, restore_switch_interval, set_switch_interval
from tfserve_lab.results import ServerInfo, Started, StartResult

if TYPE_CHECKING:
    from tfserve_lab.capture import Capture
    from tfserve_lab.export import ExportResult, SavedModelInfo
    from tfserve_lab.loadtest.profile import ProfileResult
    from tfserve_lab.loadtest.results import BenchResult, BenchRow
    from tfserve_lab.loadtest.runner import Load
    from tfserve_lab.loadtest.tune import TuneResult

__all__ = [
    "MODELS_DIR",
    "DeployResult",
    "EngineStatus",
    "ModelStatus",
    "batching",
    "bench",
    "capture",
    "current",
    "deploy",
    "export",
    "inspect",
    "k8s",
    "label",
    "predict",
    "profile",
    "set_batching",
    "shadow",
    "shadow_records",
    "split",
    "start",
    "status",
    "stop",
    "tune",
    "undeploy",
]

_session: Any = None  # the ServingSession of this process, once started

# The folder holding one model repository (base path) per model, relative to the notebook.
MODELS_DIR = "models"
# Requests/s a model sustained within its SLO in the last tune (per replica, for ``k8s(target_rps=...)``).
_capacity: dict[str, float] = {}
# A line of text saying where a long operation is, and the fraction done (None when not known).
Progress = Callable[[str, float | None], None]


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


def export(
    model: Any,
    name: str,
    *,
    models_dir: str = MODELS_DIR,
    base_path: str | None = None,
    version: int | None = None,
    warmup: Any = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Write a Keras/TF model as the next version (or ``version``) of model ``name``.

    Args:
        model: A Keras 3 model, a ``tf.Module`` or a ``tf.function`` with a signature.
        name: The model's name.
        models_dir: The folder that holds one base path per model: the version goes to
            ``models_dir/name/N``.
        base_path: TF Serving's base_path, the folder that holds the numeric version folders
            (instead of ``models_dir/name``).
        version: The version number; the next free one when None.
        warmup: Sample input written as TF Serving warmup records.
        progress: Called with a line of text and the fraction done as the export advances.
    """
    from tfserve_lab.export import export_model

    return export_model(
        model,
        name,
        base_path=_base_path(name, models_dir, base_path),
        version=version,
        warmup=warmup,
        progress=progress,
    )


def inspect(
    target: str, *, version: int | None = None, models_dir: str = MODELS_DIR, base_path: str | None = None
) -> SavedModelInfo:
    """Tag sets and signatures of a SavedModel: a served model's, ``models_dir/NAME``'s, or a folder's.

    ``target`` is a model name (served, or a folder under ``models_dir``), a base path with numeric
    version folders (the newest version, or ``version``), or a SavedModel folder itself.
    """
    from tfserve_lab.core.repository import list_versions
    from tfserve_lab.export import inspect_saved_model

    path = base_path or target
    if base_path is None and not os.path.isdir(path):
        served = {m.name: m.base_path for m in status().models}
        path = served.get(target, os.path.join(models_dir, target))
    if not os.path.isdir(path):
        raise TfServeError(f"No SavedModel or model named {target!r} (looked in {path}).", code=ErrorCode.NOT_FOUND)
    versions = list_versions(path)
    if versions and not os.path.exists(os.path.join(path, "saved_model.pb")):
        chosen = version if version is not None else max(versions)
        if chosen not in versions:
            raise TfServeError(f"{path} has no version {chosen} (it has {sorted(versions)}).", code=ErrorCode.NOT_FOUND)
        path = versions[chosen]
    return inspect_saved_model(path)


@dataclass(frozen=True)
class DeployResult:
    """What ``deploy`` did: the model as it is served now, and a warning when nothing could load."""

    status: ModelStatus
    warning: str = ""


def deploy(
    name: str,
    base_path: str | None = None,
    *,
    models_dir: str = MODELS_DIR,
    policy: str | VersionPolicy | None = None,
    wait: bool = True,
    progress: Progress | None = None,
) -> DeployResult:
    """Serve model ``name`` from its base path and keep watching it for new versions.

    Args:
        name: The model's name, as clients will call it.
        base_path: TF Serving's base_path: the folder that holds the numeric version folders
            (default ``models_dir/name``).
        models_dir: The folder that holds one base path per model.
        policy: ``latest:N``, ``all``, ``specific:V1,V2`` (default: the latest version).
        wait: Return once the versions the policy asks for are AVAILABLE or failed; otherwise at once.
        progress: Called with a line of text and the fraction done (None: not known) as versions
            load and warm up.

    Raises:
        TfServeError: NOT_FOUND when the base path does not exist, or the load error when no
            version of the model could be loaded.
    """
    from tfserve_lab.core.events import EngineEvent, LoadProgress, VersionChanged
    from tfserve_lab.core.repository import aspired_versions, list_versions

    parsed = VersionPolicy.parse(policy) if isinstance(policy, str) else policy or VersionPolicy()
    path = os.path.abspath(_base_path(name, models_dir, base_path))
    if not os.path.isdir(path):
        raise TfServeError(f"Could not find base path {path} for servable {name}.", code=ErrorCode.NOT_FOUND)
    session = current()
    existing = next((m for m in session.engine.models() if m.name == name), None)
    labels = dict(existing.version_labels) if existing is not None else {}
    # A model deployed again keeps its labels and its request logging.
    config = ModelConfig(
        name,
        path,
        version_policy=parsed,
        version_labels=labels,
        logging=existing.logging if existing is not None else None,
    )
    aspired = sorted(aspired_versions(list_versions(path), parsed))
    warning = "" if aspired else _no_versions_warning(name, path)

    def observe(event: EngineEvent) -> None:
        if progress is None or getattr(event, "model", None) != name:
            return
        if isinstance(event, LoadProgress):
            progress(
                f"{name} version {event.version}: {event.stage} {event.done}/{event.total}",
                event.done / event.total if event.total else None,
            )
        elif isinstance(event, VersionChanged) and event.state.name in ("LOADING", "AVAILABLE"):
            progress(f"{name} version {event.version}: {event.state.name}", None)

    if not wait:
        threading.Thread(target=session.deploy, args=(config,), name="tfserve-deploy", daemon=True).start()
        return DeployResult(_model_status_or_pending(name, config), warning)
    session.engine.add_observer(observe)
    try:
        session.deploy(config)  # blocks until the aspired versions loaded or failed
    finally:
        session.engine.remove_observer(observe)
    served = _model_status(name)
    failed = [v for v in served.versions if v.version in aspired and v.state.name != "AVAILABLE" and v.error_message]
    if aspired and len(failed) == len(aspired):
        raise TfServeError(
            f"{name} version {failed[0].version} failed to load: {failed[0].error_message}", code=failed[0].error_code
        )
    return DeployResult(served, warning)


def _base_path(name: str, models_dir: str, base_path: str | None) -> str:
    return base_path if base_path is not None else os.path.join(models_dir, name)


def _no_versions_warning(name: str, path: str) -> str:
    """TF Serving's words for a base path without version folders, and where the versions are when we can tell."""
    from tfserve_lab.core.repository import list_versions
    from tfserve_lab.core.watcher import no_versions_message

    message = no_versions_message(name, path)
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return f"{message} {path} is itself a SavedModel: put it in a numbered folder such as {path}/1."
    candidates = sorted(entry.path for entry in os.scandir(path) if entry.is_dir() and list_versions(entry.path))
    if candidates:
        return f"{message} Did you mean {os.path.relpath(candidates[0])}?"
    return message


def _model_status_or_pending(name: str, config: ModelConfig) -> ModelStatus:
    try:
        return _model_status(name)
    except TfServeError:
        return ModelStatus(name, config.base_path, config.version_policy.describe(), dict(config.version_labels), ())


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
    batching_file: str | None = None,
    target_rps: float | None = None,
    capacity_rps: float | None = None,
) -> tuple[list[str], str]:
    """Write Kubernetes manifests running this engine's exact config on tensorflow/serving.

    Args:
        batching_file: A ``BatchingParameters`` file for the pods (a tune's ``write``); default: the
            batching the first model is served with now.
        target_rps: Requests/s the fleet must carry: sets the replicas and the autoscaler's floor to
            ``ceil(target_rps / (capacity_rps * target CPU utilization))``, and its ceiling to twice that.
        capacity_rps: Requests/s one replica sustains within the SLO (default: the last ``tune``'s best).

    Returns:
        The files written and the instructions to copy the model versions to ``model_uri``.
    """
    import math

    from tfserve_lab.batching_params import read_batching_parameters
    from tfserve_lab.deploy.kubernetes import render_manifests, write_manifests
    from tfserve_lab.deploy.options import K8sOptions, TrafficSplit, dns_label
    from tfserve_lab.deploy.storage import copy_instructions

    session = current()
    models = session.engine.models()
    if not models:
        raise TfServeError("The engine serves no models yet: deploy one first.", code=ErrorCode.FAILED_PRECONDITION)
    name = name or dns_label(models[0].name)
    sizing: dict[str, int] = {}
    if target_rps is not None:
        capacity = capacity_rps if capacity_rps is not None else _capacity.get(models[0].name)
        if not capacity:
            raise TfServeError(
                f"--target-rps needs the requests/s one replica sustains: run %tfserve tune {models[0].name} first, "
                "or give --capacity-rps.",
                code=ErrorCode.FAILED_PRECONDITION,
            )
        utilization = K8sOptions.target_cpu_utilization / 100
        replicas = max(1, math.ceil(target_rps / (capacity * utilization)))
        sizing = {"min_replicas": replicas, "max_replicas": 2 * replicas}
    options = K8sOptions(
        name=name,
        namespace=namespace,
        replicas=replicas,
        gpu=gpu,
        image=image,
        model_uri=model_uri,
        kserve=kserve,
        **sizing,
    )
    batching = read_batching_parameters(batching_file) if batching_file else session.engine.batching(models[0].name)
    splits = [
        TrafficSplit(m.name, weights, labels=m.version_labels)
        for m in models
        if (weights := session.engine.router.split(m.name))
    ]
    manifests = render_manifests(
        models,
        options,
        batching=batching,
        monitoring_path=session.monitoring.path if session.monitoring.enable else None,
        splits=splits,
    )
    paths = write_manifests(manifests, out or f"k8s-{name}")
    return [str(p) for p in paths], copy_instructions(models, model_uri, namespace=namespace)


def set_batching(name: str, params: BatchingConfig | str | Mapping[str, Any] | None) -> BatchingConfig | None:
    """Batch model ``name`` with new ``BatchingParameters`` while it serves: no restart, no request lost.

    Args:
        name: A served model.
        params: A ``BatchingConfig``, a ``BatchingParameters`` text proto, a dict of its fields
            (``{"max_batch_size": 32, "batch_timeout_micros": 2000}``; TF Serving's defaults for the
            rest), or None for the options the engine started with.

    Returns:
        The options the model's requests get now (None: not batched).
    """
    from tfserve_lab.batching_params import parse_batching_parameters

    session = current()
    if name not in {m.name for m in session.engine.models()}:
        raise TfServeError(f"Servable not found for request: Latest({name})", code=ErrorCode.NOT_FOUND)
    if isinstance(params, str):
        config: BatchingConfig | None = parse_batching_parameters(params, source="batching parameters")
    elif isinstance(params, Mapping):
        try:
            config = BatchingConfig(**{k: tuple(v) if k == "allowed_batch_sizes" else v for k, v in params.items()})
        except TypeError as exc:
            raise InvalidArgument(f"Not a BatchingParameters field: {exc}") from None
    else:
        config = params

    async def apply(engine: Any) -> BatchingConfig | None:
        engine.set_batching(name, config)
        return engine.batching(name)

    result: BatchingConfig | None = session.call(apply)
    return result


def batching(name: str) -> BatchingConfig | None:
    """The batching options model ``name``'s requests get now (None: not batched)."""
    return current().engine.batching(name)  # type: ignore[no-any-return]


def bench(
    name: str,
    *,
    concurrency: Sequence[int] = (1, 8, 32),
    rate: Sequence[float] = (),
    protocol: str = "rest",
    seconds: float = 5.0,
    warmup: float = 1.0,
    rows: int = 1,
    data: Any = None,
    version: int | None = None,
    signature: str = "",
    stability: float = 0.10,
    max_windows: int = 4,
    processes: int = 2,
    progress: Callable[[str], None] | None = None,
    replay: Capture | None = None,
) -> BenchResult:
    """Load-test a served model from processes of their own: closed loop per concurrency, open loop per rate.

    Args:
        name: The served model.
        concurrency: Closed-loop levels: clients that each send as soon as their last answer came.
        rate: Open-loop levels, in requests per second, sent on schedule whatever the answers.
        protocol: ``"rest"`` or ``"grpc"``.
        seconds: Length of a measured window (a level takes two to ``max_windows`` of them).
        warmup: Seconds of load before a level's first window.
        rows: Rows per request.
        data: What to send (an array for one input, a dict by input name); made from the signature's
            dtypes and shapes when None.
        version: Pin a version (default: what unversioned requests get).
        signature: The signature to call (default ``serving_default``).
        stability: Two consecutive windows must agree this closely (throughput and mean latency).
        max_windows: Windows at most per level before it is reported as not stable.
        processes: Load-generator processes (the caller runs no load thread of its own).
        progress: Called with a line of text after each window.
        replay: A ``Capture`` whose requests are sent, in turn, open loop at ``rate`` (default: the rate
            they were captured at); ``concurrency`` then defaults to none.
    """
    from tfserve_lab.loadtest.results import BenchResult
    from tfserve_lab.loadtest.runner import run_level

    if replay is not None:
        load = _replay_load(name, replay, protocol=protocol, version=version)
        rows = load.rows
        if not rate:
            if replay.requests_per_second <= 0:
                raise InvalidArgument("The capture has no rate to replay at (fewer than two requests): give --rate.")
            rate = (round(replay.requests_per_second, 1),)
        if concurrency == (1, 8, 32):
            concurrency = ()
    else:
        load = _bench_load(name, protocol=protocol, rows=rows, data=data, version=version, signature=signature)
    if not concurrency and not rate:
        raise InvalidArgument("give at least one concurrency or rate")
    levels = [{"concurrency": c} for c in concurrency] + [{"rate": float(r)} for r in rate]
    measured = [
        run_level(
            load,
            **level,  # type: ignore[arg-type]
            warmup_s=warmup,
            window_s=seconds,
            stability=stability,
            max_windows=max_windows,
            processes=processes,
            progress=progress,
        )
        for level in levels
    ]
    return BenchResult(name, protocol, rows, tuple(measured), seconds, stability)


def _bench_load(name: str, *, protocol: str, rows: int, data: Any, version: int | None, signature: str) -> Load:
    """The target and the one request a bench or a profile sends to model ``name``."""
    from tfserve_lab.loadtest.payload import bench_inputs

    with current().engine.acquire(ModelSpec(name, version)) as handle:
        key, sig = handle.signature(signature)
    return _request_load(name, protocol=protocol, version=version, signature=key, inputs=bench_inputs(sig, rows, data))


def _request_load(name: str, *, protocol: str, version: int | None, signature: str, inputs: Mapping[str, Any]) -> Load:
    from tfserve_lab.loadtest.payload import grpc_payload, rest_payload
    from tfserve_lab.loadtest.runner import Load

    if protocol not in ("rest", "grpc"):
        raise InvalidArgument(f"protocol must be rest or grpc, got {protocol!r}")
    session = current()
    info = session.info
    rows = len(next(iter(inputs.values()))) if inputs else 1
    host = "127.0.0.1" if info.host in ("0.0.0.0", "") else info.host.strip("[]")
    token = session.options.auth_token
    if protocol == "rest":
        if not info.rest_port:
            raise TfServeError("The engine serves no REST port to bench.", code=ErrorCode.FAILED_PRECONDITION)
        path = f"/v1/models/{name}" + (f"/versions/{version}" if version is not None else "") + ":predict"
        return Load(
            protocol, host, info.rest_port, rest_payload(host, info.rest_port, path, inputs, token), rows, token
        )
    return Load(protocol, host, info.grpc_port, grpc_payload(name, version, signature, inputs), rows, token)


def _replay_load(name: str, capture: Capture, *, protocol: str, version: int | None) -> Load:
    """Every captured predict request of ``capture``, as the requests of one load."""
    from dataclasses import replace

    records = capture.predict_records
    if not records:
        raise InvalidArgument("The capture holds no predict requests to replay.")
    loads = [
        _request_load(name, protocol=protocol, version=version, signature=r.signature, inputs=dict(r.inputs))
        for r in records
    ]
    rows = round(sum(len(next(iter(r.inputs.values()))) for r in records) / len(records))
    return replace(loads[0], rows=max(1, rows), more_payloads=tuple(load.payload for load in loads[1:]))


def tune(
    name: str,
    *,
    slo_p99_ms: float,
    concurrency: int = 32,
    protocol: str = "rest",
    rows: int = 1,
    data: Any = None,
    budget_s: float = 120.0,
    seconds: float = 2.0,
    allowed_batch_sizes: bool = False,
    progress: Callable[[str], None] | None = None,
) -> TuneResult:
    """Search the batching parameters of model ``name`` for the most throughput within a p99 SLO.

    Each trial applies a setting live (``set_batching``) and benches one closed-loop level at
    ``concurrency``. The best setting stays applied; ``result.write("batching.pbtxt")`` saves it.

    Args:
        name: The served model.
        slo_p99_ms: The p99 latency, in ms, a setting must meet to be recommended.
        concurrency: The load to tune for: closed-loop clients.
        protocol: ``"rest"`` or ``"grpc"``.
        rows: Rows per request.
        data: What to send (see ``bench``).
        budget_s: Seconds the whole search may take.
        seconds: Window length of each trial's bench.
        allowed_batch_sizes: Also try padding batches to fixed sizes.
        progress: Called with a line of text after each trial.
    """
    import os

    from tfserve_lab.loadtest.tune import tune as search

    def measure() -> BenchRow:
        result = bench(
            name,
            concurrency=(concurrency,),
            protocol=protocol,
            seconds=seconds,
            warmup=0.5,
            rows=rows,
            data=data,
            max_windows=3,
        )
        return result.rows[0]

    result = search(
        lambda config: set_batching(name, config),
        measure,
        model=name,
        slo_p99_ms=slo_p99_ms,
        concurrency=concurrency,
        rows=rows,
        budget_s=budget_s,
        threads=os.cpu_count() or 1,
        allowed_batch_sizes=allowed_batch_sizes,
        progress=progress,
    )
    if result.best is not None:
        _capacity[name] = result.best.row.requests_per_second
    return result


def profile(
    name: str,
    *,
    seconds: float = 2.0,
    logdir: str = "profiles",
    concurrency: int = 8,
    protocol: str = "rest",
    rows: int = 1,
    data: Any = None,
) -> ProfileResult:
    """A TensorFlow profiler trace of the engine while bench load (processes of their own) runs against ``name``.

    The trace lands in ``logdir`` as TensorBoard's Profile tab reads it (``tensorboard --logdir
    profiles``); the result lists the most expensive ops.
    """
    from tfserve_lab.loadtest.profile import ProfileResult, top_ops, trace
    from tfserve_lab.loadtest.runner import running_load

    load = _bench_load(name, protocol=protocol, rows=rows, data=data, version=None, signature="")

    def during(capture: Callable[[], None]) -> None:
        from tfserve_lab.loadtest.runner import Collected

        with running_load(load, concurrency=concurrency) as poll:
            collected = Collected()
            time.sleep(0.5)  # the clients connect and warm the path up before the capture
            poll(collected)
            capture()
            poll(collected)

    files = trace(logdir, seconds, during=during)
    return ProfileResult(os.path.abspath(logdir), files, seconds, top_ops(files))


def capture(
    name: str,
    *,
    seconds: float = 30.0,
    count: int | None = None,
    rate: float = 1.0,
    progress: Callable[[str, float | None], None] | None = None,
) -> Capture:
    """Collect model ``name``'s live requests and answers in memory (no file needed).

    Args:
        name: The served model.
        seconds: How long to listen.
        count: Stop after this many requests instead (or first, with ``seconds``).
        rate: Fraction of requests kept (1.0: all).
        progress: Called with a line of text and the fraction done while it listens.

    Returns:
        A ``Capture``: inputs and outputs as numpy arrays, versions, timestamps; ``save`` and
        ``Capture.load`` use TF Serving's ``PredictionLog`` TFRecord format.
    """
    from tfserve_lab.capture import Capture

    if not 0 < rate <= 1:
        raise InvalidArgument(f"rate is a fraction of the requests: 0 < rate <= 1, got {rate}")
    session = current()
    if name not in {m.name for m in session.engine.models()}:
        raise TfServeError(f"Servable not found for request: Latest({name})", code=ErrorCode.NOT_FOUND)
    request_log = session.engine.request_log
    tap = request_log.tap(name, rate, count)
    started = time.monotonic()
    try:
        while not tap.full.wait(0.1):
            elapsed = time.monotonic() - started
            if elapsed >= seconds:
                break
            if progress is not None:
                done = len(tap.records) / count if count else elapsed / seconds
                progress(f"{len(tap.records)} requests of {name} captured", min(1.0, done))
    finally:
        request_log.untap(name, tap)
    return Capture(name, tuple(tap.records))


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
