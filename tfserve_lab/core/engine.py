"""Engine: the one entry point REST, gRPC and the notebook call for every request.

A request's whole life is here, from the version's lease to its one
``RequestDone``: ``predict``, ``classify``, ``regress`` and ``multi_inference``
take the model spec and the request's body (``core/requests.py``); adapters
only decode and encode. Where a model call runs: ``core/placement.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from tfserve_lab.config import BatchingConfig, ModelConfig, without_version
from tfserve_lab.core.engine_options import EngineOptions
from tfserve_lab.core.events import EngineEvent, Observer, RequestDone, RequestLogDropped
from tfserve_lab.core.examples import (
    CLASSIFY_METHOD,
    PREDICT_METHOD,
    REGRESS_METHOD,
    InferenceTask,
    check_tasks,
    classification_signature,
    classifications,
    examples_tensor,
    regression_signature,
    regression_values,
    task_signatures,
)
from tfserve_lab.core.model_calls import ModelCalls
from tfserve_lab.core.registry import Registry, ServableHandle
from tfserve_lab.core.request_log import LoggedRequest, RequestLog
from tfserve_lab.core.requests import ExamplesDecoder, PredictDecoder
from tfserve_lab.core.router import Router
from tfserve_lab.core.shadow import ShadowTraffic
from tfserve_lab.core.types import (
    DEFAULT_SIGNATURE,
    ClassifyResult,
    MetadataResult,
    ModelSpec,
    PredictResult,
    RegressResult,
    RequestContext,
    VersionState,
    VersionStatus,
)
from tfserve_lab.core.watcher import Loader, Watcher
from tfserve_lab.errors import ErrorCode, FailedPrecondition, InvalidArgument, TfServeError

__all__ = ["Engine", "EngineOptions"]

log = logging.getLogger("tfserve_lab")

R = TypeVar("R")

# The method names a predict call accepts when the method-name check is on (predict_util.cc).
_PREDICT_METHODS = (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD)
_NO_NAME = "ModelSpec has no name specified."


class Engine:
    """Models and versions, and the predict/classify/regress/status/metadata calls on them.

    Every call that names a request raises TfServeError with TF Serving's message and code, after
    counting the request once (a ``RequestDone`` to the observers).
    """

    def __init__(self, loader: Loader, options: EngineOptions | None = None) -> None:
        self.options = options or EngineOptions()
        self._observers: list[Observer] = []
        self._method_check = self.options.signature_method_name_check
        self.registry = Registry(
            on_event=self._emit, allow_labels_for_unavailable=self.options.allow_labels_for_unavailable
        )
        self._calls = ModelCalls(
            self.options.batching,
            per_model_batching=self.options.per_model_batching,
            num_model_threads=self.options.num_model_threads,
            inline_calls_below_s=self.options.inline_calls_below_s,
            on_batch=self._emit,
        )
        self.watcher = Watcher(self.registry, self._calls.loader(loader), self.options.watcher, on_progress=self._emit)
        self.router = Router(labels=self.registry.labels)
        self.shadow = ShadowTraffic(self.registry, self._calls.run)
        self._active = 0  # requests inside the engine now, from their first check (loop thread only)
        self.request_log = RequestLog(on_drop=lambda model: self._emit(RequestLogDropped(model)))

    # -- lifecycle -----------------------------------------------------------

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
        self.request_log.apply(
            {m.name: m.logging for m in models if m.logging is not None}, self.options.log_sink_factory
        )
        self.registry.set_models(models)
        self.watcher.poll_once()
        for model in models:
            if model.version_labels:
                self.registry.set_labels(model.name, model.version_labels)

    def undeploy(self, name: str, version: int | None = None) -> None:
        """Stop serving a model, or one version of it while the others keep serving (``without_version``)."""
        models = self.models()
        known = version is not None and any(m.name == name for m in models)
        serving = [s.version for s in self.status(name) if s.state is VersionState.AVAILABLE] if known else []
        self.load(without_version(models, name, version, serving))

    def start_polling(self) -> None:
        """Watch the repositories for new and removed versions in the background."""
        self.watcher.start()

    def stop(self) -> None:
        """Unload everything (after requests in flight) and stop the threads."""
        self._calls.close_batches()
        self.request_log.close()
        self.watcher.stop(unload=True)
        self._calls.shutdown()

    def models(self) -> list[ModelConfig]:
        """The configured models."""
        return self.registry.configs()

    # -- lookups -------------------------------------------------------------

    def acquire(self, spec: ModelSpec, headers: Mapping[str, str] | None = None) -> ServableHandle:
        """A lease on the version ``spec`` names (or the router picks); the caller releases it."""
        if not spec.name:
            raise InvalidArgument(_NO_NAME)
        return self.registry.acquire(self.router.route(spec, headers))

    def status(self, name: str, version: int | None = None) -> list[VersionStatus]:
        """GetModelStatus: every version of a model, or the one named (TF Serving ignores labels here)."""
        return self.registry.statuses(name, version)

    def labels(self, name: str) -> dict[str, int]:
        """A model's version labels."""
        return self.registry.labels(name)

    def set_labels(self, name: str, labels: Mapping[str, int]) -> None:
        """Point version labels of a model at versions (each must be AVAILABLE, as TF Serving checks)."""
        self.registry.set_labels(name, labels)

    def metadata(self, spec: ModelSpec) -> MetadataResult:
        """GetModelMetadata's signature_def part for the version ``spec`` names."""
        with self.acquire(spec) as handle:
            return MetadataResult(handle.model, handle.version, dict(handle.servable.signatures))

    # -- requests ------------------------------------------------------------

    async def predict(
        self,
        spec: ModelSpec,
        body: PredictDecoder,
        *,
        headers: Mapping[str, str] | None = None,
        output_filter: Sequence[str] = (),
        context: RequestContext | None = None,
    ) -> PredictResult:
        """Run the signature ``body`` names on its inputs; ``output_filter`` limits the outputs."""
        return await self._serve("predict", spec, body, headers, context, self._predict, body, tuple(output_filter))

    async def classify(
        self,
        spec: ModelSpec,
        body: ExamplesDecoder,
        *,
        headers: Mapping[str, str] | None = None,
        context: RequestContext | None = None,
    ) -> ClassifyResult:
        """Run a classification signature on serialized tf.Examples."""
        result = await self._serve("classify", spec, body, headers, context, self._on_examples, body, CLASSIFY_METHOD)
        assert isinstance(result, ClassifyResult)
        return result

    async def regress(
        self,
        spec: ModelSpec,
        body: ExamplesDecoder,
        *,
        headers: Mapping[str, str] | None = None,
        context: RequestContext | None = None,
    ) -> RegressResult:
        """Run a regression signature on serialized tf.Examples."""
        result = await self._serve("regress", spec, body, headers, context, self._on_examples, body, REGRESS_METHOD)
        assert isinstance(result, RegressResult)
        return result

    async def multi_inference(
        self,
        spec: ModelSpec,
        tasks: Sequence[InferenceTask],
        body: ExamplesDecoder,
        *,
        headers: Mapping[str, str] | None = None,
        context: RequestContext | None = None,
    ) -> list[ClassifyResult | RegressResult]:
        """Run several classify and regress signatures of one version on the same tf.Examples, in task order.

        Every task is checked before any runs, as TF Serving's MultiInference does.
        """
        return await self._serve(
            "multi_inference",
            spec,
            body,
            headers,
            context,
            self._multi_inference,
            tasks,
            body,
            check=lambda: check_tasks(tasks),
        )

    async def _serve(
        self,
        method: str,
        spec: ModelSpec,
        body: PredictDecoder | ExamplesDecoder,
        headers: Mapping[str, str] | None,
        context: RequestContext | None,
        work: Callable[..., Awaitable[tuple[R, int, float]]],
        *args: Any,
        check: Callable[[], None] | None = None,
    ) -> R:
        """One request from its first check to its accounting: ``work`` runs holding the version's lease.

        ``work`` returns the result, the examples (rows) it ran and the model's runtime.
        """
        signature = spec.signature_name
        handle: ServableHandle | None = None
        self._active += 1
        try:
            if not spec.name:
                raise InvalidArgument(_NO_NAME)  # before the other checks, as ServerCore refuses it
            if check is not None:
                check()
            signature = body.signature_name() or spec.signature_name or DEFAULT_SIGNATURE
            with self.acquire(spec, headers) as handle:
                result, examples, runtime = await work(handle, signature, *args)
        except TfServeError as exc:
            self._done(spec, handle, signature, method, context, exc.code)
            raise
        finally:
            self._active -= 1
        self._done(spec, handle, signature, method, context, ErrorCode.OK, examples, runtime)
        return result

    async def _predict(
        self, handle: ServableHandle, key: str, body: PredictDecoder, output_filter: tuple[str, ...]
    ) -> tuple[PredictResult, int, float]:
        info = handle.servable.signatures.get(key)
        inputs = body.inputs(key, info)
        if info is None:
            raise FailedPrecondition(f'Serving signature key "{key}" not found.')
        if self.options.signature_method_name_check and info.method_name not in _PREDICT_METHODS:
            raise TfServeError(
                f"Expected prediction signature method_name to be one of {{{', '.join(_PREDICT_METHODS)}}}. "
                f"Was: {info.method_name}",
                code=ErrorCode.INTERNAL,
            )
        started = time.perf_counter()
        outputs = await self._calls.run(handle, key, inputs, output_filter or None, self._alone)
        runtime = time.perf_counter() - started
        self._log(handle, key, "predict", inputs, outputs, output_filter)
        candidate = self.router.shadow(handle.model)
        if candidate is not None and candidate != handle.version and not output_filter:
            self.shadow.send(handle, candidate, key, inputs, outputs, runtime)
        return PredictResult(handle.model, handle.version, key, outputs), _batch_size(inputs), runtime

    async def _on_examples(
        self, handle: ServableHandle, key: str, body: ExamplesDecoder, method: str
    ) -> tuple[ClassifyResult | RegressResult, int, float]:
        check = classification_signature if method == CLASSIFY_METHOD else regression_signature
        check(handle.servable.signatures, key, method_check=self._method_check)
        examples = body.examples()
        result, runtime = await self._run_examples(handle, key, method, examples)
        if self.request_log.active:
            kind = "classify" if method == CLASSIFY_METHOD else "regress"
            self._log(handle, key, kind, {"examples": list(examples)}, result)
        return result, len(examples), runtime

    async def _multi_inference(
        self, handle: ServableHandle, key: str, tasks: Sequence[InferenceTask], body: ExamplesDecoder
    ) -> tuple[list[ClassifyResult | RegressResult], int, float]:
        keys = task_signatures(handle.servable.signatures, tasks, method_check=self._method_check)
        examples = body.examples()
        results: list[ClassifyResult | RegressResult] = []
        runtime = 0.0
        for (_, _, method), signature in zip(tasks, keys, strict=True):
            result, seconds = await self._run_examples(handle, signature, method, examples)
            results.append(result)
            runtime += seconds
        if self.request_log.active:
            # One multi_inference_log record for the request, as TF Serving logs it.
            answers = [
                ("classify" if isinstance(r, ClassifyResult) else "regress", r.signature_name, r) for r in results
            ]
            self._log(handle, keys[0], "multi_inference", {"examples": list(examples)}, answers)
        return results, len(examples), runtime

    async def _run_examples(
        self, handle: ServableHandle, key: str, method: str, examples: Sequence[bytes]
    ) -> tuple[ClassifyResult | RegressResult, float]:
        """One classify or regress call on checked signature ``key``, its outputs checked as TF Serving does."""
        started = time.perf_counter()
        tensor = examples_tensor(examples)
        outputs = await self._calls.run(handle, key, {"inputs": tensor}, None, self._alone)
        runtime = time.perf_counter() - started
        if method == CLASSIFY_METHOD:
            classes, scores = classifications(outputs, len(examples))
            return ClassifyResult(handle.model, handle.version, key, classes, scores), runtime
        values = regression_values(outputs["outputs"], len(examples))
        return RegressResult(handle.model, handle.version, key, values), runtime

    def _alone(self) -> bool:
        return self._active == 1

    def _log(
        self,
        handle: ServableHandle,
        key: str,
        method: str,
        inputs: Mapping[str, object],
        result: object,
        output_filter: tuple[str, ...] = (),
    ) -> None:
        """Offer the request to its model's request logs (the record is only built when one samples it)."""
        if self.request_log.active:
            self.request_log.offer(
                handle.model,
                lambda rate: LoggedRequest(
                    handle.model,
                    handle.version,
                    key,
                    method,
                    dict(inputs),
                    result,
                    sampling_rate=rate,
                    output_filter=output_filter,
                ),
            )

    def set_batching(self, model: str, config: BatchingConfig | None) -> None:
        """Batch ``model``'s requests with ``config`` from now on (None: the start-up options); see ``ModelCalls``."""
        self._calls.set_batching(model, config)

    def batching(self, model: str) -> BatchingConfig | None:
        """The batching options ``model``'s requests get now (None: not batched)."""
        return self._calls.batching(model)

    # -- accounting ----------------------------------------------------------

    def count_expired(self, spec: ModelSpec, method: str, context: RequestContext) -> None:
        """Count a request whose deadline ended it inside the engine (cancelled there, so not counted yet)."""
        self._done(spec, None, spec.signature_name, method, context, ErrorCode.DEADLINE_EXCEEDED)

    def _done(
        self,
        spec: ModelSpec,
        handle: ServableHandle | None,
        signature: str,
        method: str,
        context: RequestContext | None,
        code: ErrorCode,
        examples: int = 0,
        runtime: float = 0.0,
    ) -> None:
        if self._observers:
            model, version = (handle.model, handle.version) if handle is not None else (spec.name, spec.version)
            protocol, started = (context.protocol, context.started) if context is not None else ("python", 0.0)
            latency = time.perf_counter() - started if started else 0.0
            self._emit(RequestDone(model, version, signature, method, protocol, code, latency, runtime, examples))


def _batch_size(inputs: Mapping[str, np.ndarray]) -> int:
    for array in inputs.values():
        return int(array.shape[0]) if array.ndim else 1
    return 0
