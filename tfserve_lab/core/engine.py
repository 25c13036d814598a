"""Engine: the one entry point REST, gRPC and the notebook call for every request.

Async methods run on the engine loop; model calls go to the batch threads
(TensorFlow releases the GIL), so protocol work and inference overlap, except
calls measured under half a millisecond, which cost less inline than the
hand-off, and calls of a few milliseconds made while the loop has nothing
else to do (see ``call_costs``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from tfserve_lab.batching_params import check_batching_config, read_batching_parameters
from tfserve_lab.config import BatchingConfig, ModelConfig, RequestLogging
from tfserve_lab.core.batching import Batcher
from tfserve_lab.core.call_costs import CallCosts
from tfserve_lab.core.dtypes import dt_for_numpy
from tfserve_lab.core.events import EngineEvent, Observer, RequestDone, RequestLogDropped
from tfserve_lab.core.loop import loop_is_idle
from tfserve_lab.core.registry import Registry, ServableHandle
from tfserve_lab.core.request_log import LoggedRequest, RequestLog, Sink
from tfserve_lab.core.router import Router
from tfserve_lab.core.servables.base import Servable
from tfserve_lab.core.signature_text import signature_debug_string, tensor_shape_string
from tfserve_lab.core.types import (
    DEFAULT_SIGNATURE,
    ClassifyResult,
    MetadataResult,
    ModelSpec,
    PredictResult,
    RegressResult,
    RequestContext,
    SignatureInfo,
    VersionStatus,
)
from tfserve_lab.core.watcher import Loader, Watcher, WatcherOptions
from tfserve_lab.errors import ErrorCode, InvalidArgument, TfServeError

__all__ = ["CLASSIFY_METHOD", "PREDICT_METHOD", "REGRESS_METHOD", "Engine", "EngineOptions", "ShadowRecord"]

log = logging.getLogger("tfserve_lab")

CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
PREDICT_METHOD = "tensorflow/serving/predict"
# The method names a predict call accepts when the method-name check is on (predict_util.cc).
_PREDICT_METHODS = (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD)


SHADOW_LOG_SIZE = 2000

# The most batch threads a live batching change may ask for (the pool makes its threads as calls need them).
_MAX_BATCH_THREADS = 64

# TF Serving's per-model batching parameters, read from the version folder (--enable_per_model_batching_parameters).
PER_MODEL_BATCHING_FILE = "batching_params.pbtxt"


@dataclass(frozen=True)
class ShadowRecord:
    """One live request and the shadow candidate's answer to the same inputs."""

    live_version: int
    shadow_version: int
    inputs: dict[str, np.ndarray]
    live_outputs: dict[str, np.ndarray]
    shadow_outputs: dict[str, np.ndarray]
    live_runtime_s: float
    shadow_runtime_s: float


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


class Engine:
    """Models and versions, and the predict/classify/regress/status/metadata calls on them."""

    def __init__(self, loader: Loader, options: EngineOptions | None = None) -> None:
        self.options = options or EngineOptions()
        self._observers: list[Observer] = []
        self.registry = Registry(
            on_event=self._emit, allow_labels_for_unavailable=self.options.allow_labels_for_unavailable
        )
        self._per_model_batching = self.options.batching is not None and self.options.per_model_batching
        self._model_batching: weakref.WeakKeyDictionary[Servable, BatchingConfig] = weakref.WeakKeyDictionary()
        if self._per_model_batching:
            loader = self._with_batching_parameters(loader)
        self.watcher = Watcher(self.registry, loader, self.options.watcher, on_progress=self._emit)
        self.router = Router(labels=self.registry.labels)
        self.shadow_log: dict[str, deque[ShadowRecord]] = {}
        self._shadow_tasks: set[asyncio.Task[None]] = set()
        threads = self.options.batching.num_batch_threads if self.options.batching else self.options.num_model_threads
        self._executor = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="tfserve-batch")
        self._executor_size = max(1, threads)
        self._extra_executors: list[ThreadPoolExecutor] = []
        batching = self.options.batching
        self._costs = CallCosts(self.options.inline_calls_below_s)
        self._threaded = 0  # model calls of _run on the threads now (loop-thread only)
        self._batcher = (
            Batcher(batching, self._executor, self._emit, costs=self._costs) if batching is not None else None
        )
        # Batching options set while serving, per model (``set_batching``); read without a lock on the loop.
        self._batching_overrides: dict[str, BatchingConfig] = {}
        self.request_log = RequestLog(on_drop=lambda model: self._emit(RequestLogDropped(model)))
        self._logging: dict[str, RequestLogging] = {}

    # -- lifecycle -----------------------------------------------------------

    def _with_batching_parameters(self, loader: Loader) -> Loader:
        """A loader that also reads a version's own batching parameters (a bad file fails the load)."""

        def load(path: str) -> Servable:
            servable = loader(path)
            params = os.path.join(path, PER_MODEL_BATCHING_FILE)
            if os.path.isfile(params):
                try:
                    config = read_batching_parameters(params)
                    check_batching_config(config)
                except TfServeError:
                    servable.close()
                    raise
                self._model_batching[servable] = config
            return servable

        return load

    def add_observer(self, observer: Observer) -> None:
        """Receive every engine event (called on the thread that emits it)."""
        self._observers.append(observer)

    def remove_observer(self, observer: Observer) -> None:
        """Stop sending events to ``observer``."""
        if observer in self._observers:
            self._observers.remove(observer)

    def _emit(self, event: EngineEvent) -> None:
        for observer in self._observers:
            try:
                observer(event)
            except Exception:
                log.exception("Engine observer %r failed on %r", observer, event)

    def load(self, models: Sequence[ModelConfig]) -> None:
        """Apply a model config and block until its aspired versions loaded or failed."""
        self._apply_logging(models)
        self.registry.set_models(models)
        self.watcher.poll_once()
        for model in models:
            if model.version_labels:
                self.registry.set_labels(model.name, model.version_labels)

    def _apply_logging(self, models: Sequence[ModelConfig]) -> None:
        """Start, change or stop each model's request logging as its ``logging_config`` says (config reloads too)."""
        wanted = {m.name: m.logging for m in models if m.logging is not None}
        for name in set(self._logging) | set(wanted):
            config = wanted.get(name)
            if config == self._logging.get(name):
                continue
            factory = self.options.log_sink_factory
            sink = factory(name, config) if config is not None and factory is not None else None
            old = self.request_log.configure(name, config.sampling_rate if config is not None else 0.0, sink)
            if old is not None:
                old.close()
            if config is None:
                self._logging.pop(name, None)
            else:
                self._logging[name] = config

    def start_polling(self) -> None:
        """Watch the repositories for new and removed versions in the background."""
        self.watcher.start()

    def stop(self) -> None:
        """Unload everything (after requests in flight) and stop the threads."""
        if self._batcher is not None:
            self._batcher.close()
        self.request_log.close()
        self.watcher.stop(unload=True)
        self._executor.shutdown(wait=True)
        for executor in self._extra_executors:
            executor.shutdown(wait=True)

    def models(self) -> list[ModelConfig]:
        """The configured models."""
        return self.registry.configs()

    # -- lookups -------------------------------------------------------------

    def acquire(self, spec: ModelSpec, headers: Mapping[str, str] | None = None) -> ServableHandle:
        """A lease on the version ``spec`` names (or the router picks); the caller releases it."""
        return self.registry.acquire(self.router.route(spec, headers))

    def status(self, name: str, version: int | None = None) -> list[VersionStatus]:
        """GetModelStatus: every version of a model, or the one named (TF Serving ignores labels here)."""
        return self.registry.statuses(name, version)

    def metadata(self, spec: ModelSpec) -> MetadataResult:
        """GetModelMetadata's signature_def part for the version ``spec`` names."""
        with self.acquire(spec) as handle:
            return MetadataResult(handle.model, handle.version, dict(handle.servable.signatures))

    # -- requests ------------------------------------------------------------

    async def predict(
        self,
        handle: ServableHandle,
        signature_name: str,
        inputs: Mapping[str, np.ndarray],
        *,
        output_filter: Sequence[str] = (),
        context: RequestContext | None = None,
    ) -> PredictResult:
        """Run a signature on named inputs; ``output_filter`` limits the outputs."""
        key = signature_name
        try:
            key, info = handle.signature(signature_name)
            if self.options.signature_method_name_check and info.method_name not in _PREDICT_METHODS:
                raise TfServeError(
                    f"Expected prediction signature method_name to be one of {{{', '.join(_PREDICT_METHODS)}}}. "
                    f"Was: {info.method_name}",
                    code=ErrorCode.INTERNAL,
                )
            started = time.perf_counter()
            outputs = await self._run(handle, key, inputs, output_filter or None)
            runtime = time.perf_counter() - started
        except TfServeError as exc:
            self._done(handle, key, "predict", context, exc.code)
            exc.recorded = True
            raise
        self._done(handle, key, "predict", context, ErrorCode.OK, _batch_size(inputs), runtime)
        if self.request_log.active:
            self.request_log.offer(
                handle.model,
                lambda rate: LoggedRequest(
                    handle.model,
                    handle.version,
                    key,
                    "predict",
                    dict(inputs),
                    outputs,
                    sampling_rate=rate,
                    output_filter=tuple(output_filter),
                ),
            )
        candidate = self.router.shadow(handle.model)
        if candidate is not None and candidate != handle.version and not output_filter:
            self._start_shadow(handle, candidate, key, inputs, outputs, runtime)
        return PredictResult(handle.model, handle.version, key, outputs)

    def _start_shadow(
        self,
        live: ServableHandle,
        candidate: int,
        signature: str,
        inputs: Mapping[str, np.ndarray],
        outputs: dict[str, np.ndarray],
        runtime: float,
    ) -> None:
        """Send a copy of a live request to the shadow candidate; its answer is only recorded."""

        async def run() -> None:
            try:
                with self.registry.acquire(ModelSpec(live.model, candidate)) as handle:
                    _, info = handle.signature(signature)
                    feed = dict(inputs)
                    if len(feed) == 1 and len(info.inputs) == 1 and next(iter(feed)) not in info.inputs:
                        # One input under another name (Keras numbers unnamed inputs per process).
                        feed = {next(iter(info.inputs)): next(iter(feed.values()))}
                    started = time.perf_counter()
                    shadow_outputs = await self._run(handle, signature, feed, None)
                    elapsed = time.perf_counter() - started
            except TfServeError as exc:
                log.warning("Shadow request to %s version %d failed: %s", live.model, candidate, exc.message)
                return
            records = self.shadow_log.setdefault(live.model, deque(maxlen=SHADOW_LOG_SIZE))
            records.append(
                ShadowRecord(live.version, candidate, dict(inputs), outputs, shadow_outputs, runtime, elapsed)
            )

        task = asyncio.get_running_loop().create_task(run())
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)

    async def classify(
        self,
        handle: ServableHandle,
        signature_name: str,
        examples: Sequence[bytes],
        *,
        context: RequestContext | None = None,
        log: bool = True,
    ) -> ClassifyResult:
        """Run a classification signature on serialized tf.Examples."""
        key = signature_name or DEFAULT_SIGNATURE
        try:
            self.classification_signature(handle, key)
            started = time.perf_counter()
            outputs = await self._run(handle, key, {"inputs": _examples_tensor(examples)}, None)
            runtime = time.perf_counter() - started
            classes, scores = _classifications(outputs, len(examples))
        except TfServeError as exc:
            self._done(handle, key, "classify", context, exc.code)
            exc.recorded = True
            raise
        self._done(handle, key, "classify", context, ErrorCode.OK, len(examples), runtime)
        result = ClassifyResult(handle.model, handle.version, key, classes, scores)
        if log and self.request_log.active:
            self.request_log.offer(
                handle.model, lambda rate: _examples_record(handle, key, "classify", examples, result, rate)
            )
        return result

    async def regress(
        self,
        handle: ServableHandle,
        signature_name: str,
        examples: Sequence[bytes],
        *,
        context: RequestContext | None = None,
        log: bool = True,
    ) -> RegressResult:
        """Run a regression signature on serialized tf.Examples."""
        key = signature_name or DEFAULT_SIGNATURE
        try:
            self.regression_signature(handle, key)
            started = time.perf_counter()
            outputs = await self._run(handle, key, {"inputs": _examples_tensor(examples)}, None)
            runtime = time.perf_counter() - started
            values = _regression_values(outputs["outputs"], len(examples))
        except TfServeError as exc:
            self._done(handle, key, "regress", context, exc.code)
            exc.recorded = True
            raise
        self._done(handle, key, "regress", context, ErrorCode.OK, len(examples), runtime)
        result = RegressResult(handle.model, handle.version, key, values)
        if log and self.request_log.active:
            self.request_log.offer(
                handle.model, lambda rate: _examples_record(handle, key, "regress", examples, result, rate)
            )
        return result

    def classification_signature(self, handle: ServableHandle, key: str) -> SignatureInfo:
        """The signature a classify call runs, checked as TF Serving's ``PreProcessClassification`` does."""
        info = self._examples_signature(handle, key, CLASSIFY_METHOD, "classification")
        if len(info.outputs) not in (1, 2):
            raise InvalidArgument(f"Expected one or two output Tensors, found {len(info.outputs)}")
        if "inputs" not in info.inputs:
            raise InvalidArgument(f"No classification inputs found in SignatureDef: {signature_debug_string(info)}")
        if "classes" not in info.outputs and "scores" not in info.outputs:
            raise InvalidArgument(
                'Expected classification signature outputs to contain at least one of "classes" or "scores". '
                f"Signature was: {signature_debug_string(info)}"
            )
        return info

    def regression_signature(self, handle: ServableHandle, key: str) -> SignatureInfo:
        """The signature a regress call runs, checked as TF Serving's ``PreProcessRegression`` does."""
        info = self._examples_signature(handle, key, REGRESS_METHOD, "regression")
        if len(info.outputs) != 1:
            raise InvalidArgument("Expected one output Tensor.")
        if "inputs" not in info.inputs:
            raise InvalidArgument(f"No regression inputs found in SignatureDef: {signature_debug_string(info)}")
        if "outputs" not in info.outputs:
            raise InvalidArgument(f"No regression outputs found in SignatureDef: {signature_debug_string(info)}")
        return info

    def _examples_signature(self, handle: ServableHandle, key: str, method: str, kind: str) -> SignatureInfo:
        info = handle.servable.signatures.get(key)
        if info is None:
            raise InvalidArgument(f"No signature was found with the name: {key}")
        if self.options.signature_method_name_check and info.method_name != method:
            raise InvalidArgument(f"Expected {kind} signature method_name to be {method}. Was: {info.method_name}")
        if len(info.inputs) != 1:
            raise InvalidArgument("Expected one input Tensor.")
        return info

    async def _run(
        self,
        handle: ServableHandle,
        signature_name: str,
        inputs: Mapping[str, np.ndarray],
        output_keys: Sequence[str] | None,
    ) -> dict[str, np.ndarray]:
        batcher = self._batcher
        if batcher is not None:
            override = self._batching_overrides.get(handle.model) if self._batching_overrides else None
            if override is not None:
                return await batcher.submit(handle, signature_name, inputs, output_keys, override)
            if not self._per_model_batching:
                return await batcher.submit(handle, signature_name, inputs, output_keys)
            config = self._model_batching.get(handle.servable)
            if config is not None:
                return await batcher.submit(handle, signature_name, inputs, output_keys, config)
        key = (id(handle.servable), signature_name)
        costs = self._costs
        if costs.cheap(key) or (
            # Nothing to overlap with: the hand-off to a thread would only add its own cost.
            batcher is None
            and not self._threaded
            and costs.idle_inline(key)
            and loop_is_idle(asyncio.get_running_loop())
        ):
            started = time.perf_counter()
            try:
                return handle.servable.run(signature_name, inputs, output_keys)
            finally:
                costs.record(key, time.perf_counter() - started)
        self._threaded += 1
        try:
            outputs, seconds = await asyncio.get_running_loop().run_in_executor(
                self._executor, _timed, handle.servable.run, signature_name, inputs, output_keys
            )
        finally:
            self._threaded -= 1
        costs.record(key, seconds)
        return outputs

    def set_batching(self, model: str, config: BatchingConfig | None) -> None:
        """Batch ``model``'s requests with ``config`` from now on (None: back to the start-up options); loop thread.

        Requests already queued finish with the options they were queued under. ``num_batch_threads``
        is the engine's, as TF Serving's batch threads are shared by every model: it applies to all.

        Raises:
            ConfigError: options TF Serving would refuse.
        """
        if config is None:
            self._batching_overrides.pop(model, None)
            if self._batcher is not None and self.options.batching is not None:
                self._batcher.set_threads(self.options.batching.num_batch_threads)
            return
        check_batching_config(config)
        threads = min(config.num_batch_threads, _MAX_BATCH_THREADS)
        if self._batcher is None:
            self._batcher = Batcher(config, self._batch_executor(), self._emit, costs=self._costs)
        elif threads > self._executor_size and not self._extra_executors:
            # More threads than the start-up pool has: batches go to a larger pool from now on.
            self._batcher.use_executor(self._batch_executor())
        self._batcher.set_threads(threads)
        self._batching_overrides[model] = config

    def batching(self, model: str) -> BatchingConfig | None:
        """The batching options ``model``'s requests get now (None: not batched)."""
        override = self._batching_overrides.get(model)
        return override if override is not None else self.options.batching

    def _batch_executor(self) -> ThreadPoolExecutor:
        """Threads for batches when batching is first turned on while serving (made as calls need them)."""
        executor = ThreadPoolExecutor(max_workers=_MAX_BATCH_THREADS, thread_name_prefix="tfserve-batch")
        self._extra_executors.append(executor)
        return executor

    def record_failure(self, spec: ModelSpec, method: str, context: RequestContext | None, exc: TfServeError) -> None:
        """Count a request that failed before the engine ran it (bad body, unknown model), once."""
        if exc.recorded:
            return
        exc.recorded = True
        self._emit(
            RequestDone(
                spec.name, spec.version, spec.signature_name, method, _protocol(context), exc.code, _elapsed(context)
            )
        )

    def _done(
        self,
        handle: ServableHandle,
        signature: str,
        method: str,
        context: RequestContext | None,
        code: ErrorCode,
        examples: int = 0,
        runtime: float = 0.0,
    ) -> None:
        if self._observers:
            self._emit(
                RequestDone(
                    handle.model,
                    handle.version,
                    signature,
                    method,
                    _protocol(context),
                    code,
                    _elapsed(context),
                    runtime_s=runtime,
                    examples=examples,
                )
            )


def _timed(
    run: Callable[[str, Mapping[str, np.ndarray], Sequence[str] | None], dict[str, np.ndarray]],
    signature: str,
    inputs: Mapping[str, np.ndarray],
    output_keys: Sequence[str] | None,
) -> tuple[dict[str, np.ndarray], float]:
    """Run a model call on a batch thread and measure it there (queueing excluded)."""
    started = time.perf_counter()
    outputs = run(signature, inputs, output_keys)
    return outputs, time.perf_counter() - started


def _protocol(context: RequestContext | None) -> str:
    return context.protocol if context is not None else "python"


def _elapsed(context: RequestContext | None) -> float:
    return time.perf_counter() - context.started if context is not None and context.started else 0.0


def _batch_size(inputs: Mapping[str, np.ndarray]) -> int:
    for array in inputs.values():
        return int(array.shape[0]) if array.ndim else 1
    return 0


def _examples_record(
    handle: ServableHandle, signature: str, method: str, examples: Sequence[bytes], result: object, rate: float
) -> LoggedRequest:
    return LoggedRequest(
        handle.model, handle.version, signature, method, {"examples": list(examples)}, result, sampling_rate=rate
    )


def _examples_tensor(examples: Sequence[bytes]) -> np.ndarray:
    if not examples:
        raise InvalidArgument("Input is empty.")
    tensor = np.empty(len(examples), dtype=object)
    tensor[:] = list(examples)
    return tensor


def _classifications(outputs: Mapping[str, np.ndarray], count: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The classes and scores outputs, checked as ``PostProcessClassificationResult`` checks them."""
    checked: dict[str, np.ndarray] = {}
    for name, dtype in (("classes", "DT_STRING"), ("scores", "DT_FLOAT")):
        array = outputs.get(name)
        if array is None:
            continue
        if array.ndim != 2:
            raise InvalidArgument(
                f"Expected Tensor shape: [batch_size num_classes] but got {tensor_shape_string(array.shape)}"
            )
        actual = _dtype_name(array)
        if actual != dtype:
            raise InvalidArgument(f"Expected {name} Tensor of {dtype}. Got: {actual}")
        if array.shape[0] != count:
            raise InvalidArgument(f"Expected {name} output batch size of {count}. Got: {array.shape[0]}")
        checked[name] = array
    classes, scores = checked.get("classes"), checked.get("scores")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise InvalidArgument(
            f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. {scores.shape[1]}"
        )
    return classes, scores


def _regression_values(array: np.ndarray, count: int) -> np.ndarray:
    """A regression output, [batch_size] or [batch_size, 1], as [batch_size] (``PostProcessRegressionResult``)."""
    if not (array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1)):
        raise InvalidArgument(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
            f"{tensor_shape_string(array.shape)}"
        )
    if array.shape[0] != count:
        raise InvalidArgument(f"Input batch size did not match output batch size: {count} vs. {array.shape[0]}")
    actual = _dtype_name(array)
    if actual != "DT_FLOAT":
        raise InvalidArgument(f"Expected output Tensor of DT_FLOAT.  Got: {actual}")
    return array.reshape(count)


def _dtype_name(array: np.ndarray) -> str:
    try:
        return dt_for_numpy(array.dtype)
    except KeyError:
        return "DT_" + str(array.dtype.name).upper()
