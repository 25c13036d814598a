"""PredictionService and ModelService: decode, call the engine, encode.

The servicer classes are the generated ones from ``tensorflow-serving-api``;
each method is thin. The ErrorCode -> gRPC status table is the only one.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import numpy as np
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tfserve_lab.config import ModelConfig, models_from_proto
from tfserve_lab.core.dtypes import DT_NAME, DT_NUMBER, NUMPY_BY_DT
from tfserve_lab.core.engine import CLASSIFY_METHOD, REGRESS_METHOD, Engine
from tfserve_lab.core.request_log import LoggedRequest
from tfserve_lab.core.types import DEFAULT_SIGNATURE, ModelSpec, RequestContext
from tfserve_lab.errors import ErrorCode, InvalidArgument, TfServeError
from tfserve_lab.protocol.grpc.codec import fill_tensor_proto, tensor_proto_to_ndarray
from tfserve_lab.protocol.grpc.metadata import signature_def_map

__all__ = ["GRPC_STATUS", "ModelServicer", "PredictionServicer", "fill_classifications"]

GRPC_STATUS: dict[ErrorCode, grpc.StatusCode] = {code: grpc.StatusCode[code.name] for code in ErrorCode}
DT_STRING = DT_NUMBER["DT_STRING"]
# grpc_status_util.cc: messages over 1024 characters are cut.
_MESSAGE_LIMIT = 1024


async def _abort(context: grpc.aio.ServicerContext, exc: TfServeError) -> None:
    """End the call with TF Serving's status code and (truncated) message."""
    message = exc.message
    if len(message) > _MESSAGE_LIMIT:
        message = message[:_MESSAGE_LIMIT] + "...TRUNCATED"
    await context.abort(GRPC_STATUS[exc.code], message)


def _spec(proto: Any) -> ModelSpec:
    if not proto.name:
        raise InvalidArgument("ModelSpec has no name specified.")
    choice = proto.WhichOneof("version_choice")
    version = proto.version.value if choice == "version" else None
    label = proto.version_label if choice == "version_label" else None
    return ModelSpec(proto.name, version, label, proto.signature_name)


def _fill_spec(proto: Any, name: str, version: int, signature: str) -> None:
    proto.name = name
    proto.version.value = version
    proto.signature_name = signature or DEFAULT_SIGNATURE


def _context(context: grpc.aio.ServicerContext) -> RequestContext:
    headers = {m.key: m.value for m in context.invocation_metadata() or () if isinstance(m.value, str)}
    return RequestContext("grpc", time.perf_counter(), headers)


def serialized_examples(proto: Any) -> list[bytes]:
    """Input.example_list[_with_context] as serialized tf.Examples.

    With a context, TF Serving writes context bytes then example bytes into
    one string: parsing concatenated protos merges them, example fields winning.
    """
    kind = proto.WhichOneof("kind")
    if kind == "example_list":
        return [example.SerializeToString() for example in proto.example_list.examples]
    if kind == "example_list_with_context":
        context = proto.example_list_with_context.context.SerializeToString()
        return [context + example.SerializeToString() for example in proto.example_list_with_context.examples]
    raise InvalidArgument("Input is empty.")


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """tensorflow.serving.PredictionService over one engine."""

    def __init__(self, engine: Engine, *, max_tensor_bytes: int = 2**31 - 1, tensor_content: bool = False) -> None:
        self.engine = engine
        # Predict outputs as AsProtoField writes them (typed *_val fields, TF Serving's default), or packed into
        # tensor_content as AsProtoTensorContent does (--enable_serialization_as_tensor_content).
        self.tensor_content = tensor_content
        # A TensorProto's shape may ask for far more elements than it carries (the last value repeats):
        # no decoded input may outgrow the largest message the server accepts.
        self.max_tensor_bytes = max_tensor_bytes

    async def _fail(
        self, context: grpc.aio.ServicerContext, spec: Any, method: str, ctx: RequestContext, exc: TfServeError
    ) -> None:
        self.engine.record_failure(ModelSpec(spec.name, signature_name=spec.signature_name), method, ctx, exc)
        await _abort(context, exc)

    async def Predict(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        ctx = _context(context)
        try:
            spec = _spec(request.model_spec)
            with self.engine.acquire(spec, ctx.headers) as handle:
                inputs = {}
                for alias, tensor in request.inputs.items():
                    _check_tensor_size(alias, tensor, self.max_tensor_bytes)
                    try:
                        inputs[alias] = tensor_proto_to_ndarray(tensor)
                    except (InvalidArgument, ValueError, MemoryError):
                        # ValueError: shapes numpy cannot hold (rank > 64), TF Serving's "cannot parse" too.
                        raise InvalidArgument(f"tensor parsing error: {alias}") from None
                result = await self.engine.predict(
                    handle, spec.signature_name, inputs, output_filter=list(request.output_filter), context=ctx
                )
        except TfServeError as exc:
            await self._fail(context, request.model_spec, "predict", ctx, exc)
        response = predict_pb2.PredictResponse()
        _fill_spec(response.model_spec, result.model_name, result.version, result.signature_name)
        for alias, array in result.outputs.items():
            fill_tensor_proto(response.outputs[alias], array, tensor_content=self.tensor_content)
        return response

    async def Classify(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        ctx = _context(context)
        try:
            spec = _spec(request.model_spec)
            examples = serialized_examples(request.input)
            with self.engine.acquire(spec, ctx.headers) as handle:
                result = await self.engine.classify(handle, spec.signature_name, examples, context=ctx)
        except TfServeError as exc:
            await self._fail(context, request.model_spec, "classify", ctx, exc)
        response = classification_pb2.ClassificationResponse()
        _fill_spec(response.model_spec, result.model_name, result.version, result.signature_name)
        fill_classifications(response.result, result.classes, result.scores)
        return response

    async def Regress(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        ctx = _context(context)
        try:
            spec = _spec(request.model_spec)
            examples = serialized_examples(request.input)
            with self.engine.acquire(spec, ctx.headers) as handle:
                result = await self.engine.regress(handle, spec.signature_name, examples, context=ctx)
        except TfServeError as exc:
            await self._fail(context, request.model_spec, "regress", ctx, exc)
        response = regression_pb2.RegressionResponse()
        _fill_spec(response.model_spec, result.model_name, result.version, result.signature_name)
        for value in result.values.tolist():
            response.result.regressions.add(value=value)
        return response

    async def MultiInference(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        ctx = _context(context)
        response = inference_pb2.MultiInferenceResponse()
        try:
            tasks = list(request.tasks)
            spec = _spec(tasks[0].model_spec if tasks else request.tasks.add().model_spec)
            _check_tasks(tasks)
            examples = serialized_examples(request.input)
            with self.engine.acquire(spec, ctx.headers) as handle:
                # Every task is checked before any runs, as TF Serving's MultiInference does.
                signatures = _task_signatures(self.engine, handle, tasks)
                answers: list[tuple[str, str, Any]] = []
                for task, signature in zip(tasks, signatures, strict=True):
                    result = response.results.add()
                    if task.method_name == CLASSIFY_METHOD:
                        done = await self.engine.classify(handle, signature, examples, context=ctx, log=False)
                        fill_classifications(result.classification_result, done.classes, done.scores)
                        answers.append(("classify", signature, done))
                    else:
                        regression = await self.engine.regress(handle, signature, examples, context=ctx, log=False)
                        for value in regression.values.tolist():
                            result.regression_result.regressions.add(value=value)
                        answers.append(("regress", signature, regression))
                    _fill_spec(result.model_spec, handle.model, handle.version, signature)
                if self.engine.request_log.active:
                    # One multi_inference_log record for the request, as TF Serving logs it.
                    self.engine.request_log.offer(
                        handle.model,
                        lambda rate: LoggedRequest(
                            handle.model,
                            handle.version,
                            signatures[0],
                            "multi_inference",
                            {"examples": list(examples)},
                            answers,
                            sampling_rate=rate,
                        ),
                    )
        except TfServeError as exc:
            await _abort(context, exc)
        return response

    async def GetModelMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            spec = _spec(request.model_spec)
            fields = list(request.metadata_field)
            if not fields:
                raise InvalidArgument("GetModelMetadataRequest must specify at least one metadata_field")
            for field in fields:
                if field != "signature_def":
                    # TF Serving's message really carries a literal %s (errors:: concatenates).
                    raise InvalidArgument(f"Metadata field %s is not supported{field}")
            result = self.engine.metadata(spec)
        except TfServeError as exc:
            await _abort(context, exc)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = result.model_name
        response.model_spec.version.value = result.version
        response.metadata["signature_def"].Pack(signature_def_map(result.signatures))
        return response


def _check_tensor_size(alias: str, tensor: Any, limit: int) -> None:
    """Refuse, before allocating, a tensor whose shape would decode to more than ``limit`` bytes."""
    sizes = [dim.size for dim in tensor.tensor_shape.dim]
    count = math.prod(sizes)
    if any(size < 0 for size in sizes) or count >= 2**63:
        return  # an invalid shape: the codec refuses it with TF Serving's message
    itemsize = NUMPY_BY_DT.get(DT_NAME.get(tensor.dtype, ""), np.dtype(np.float64)).itemsize
    size = count * max(itemsize, 8 if tensor.dtype == DT_STRING else 1)
    if size > limit:
        raise TfServeError(
            f"Input tensor {alias} would take {size} bytes once decoded, more than the limit of {limit} bytes "
            "(--grpc_max_receive_message_bytes).",
            code=ErrorCode.RESOURCE_EXHAUSTED,
        )


def _check_tasks(tasks: Sequence[Any]) -> None:
    seen: set[str] = set()
    for task in tasks:
        if not task.model_spec.name:
            raise InvalidArgument("Found ModelSpec with an empty model name.")
        if task.model_spec.name != tasks[0].model_spec.name:
            raise InvalidArgument("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        signature = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if signature in seen:
            raise InvalidArgument(f"Duplicate evaluation of signature: {signature}")
        seen.add(signature)


def _task_signatures(engine: Engine, handle: Any, tasks: Sequence[Any]) -> list[str]:
    """Each MultiInference task's signature, checked as its method's pre-processing checks it."""
    names: list[str] = []
    input_tensor = ""
    for task in tasks:
        signature = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if signature not in handle.servable.signatures:
            raise InvalidArgument(f"Requested signature not found in model graph: {signature}")
        if task.method_name == CLASSIFY_METHOD:
            info = engine.classification_signature(handle, signature)
        elif task.method_name == REGRESS_METHOD:
            info = engine.regression_signature(handle, signature)
        else:
            raise TfServeError(f"Unsupported signature method_name: {task.method_name}", code=ErrorCode.UNIMPLEMENTED)
        tensor = info.inputs["inputs"].name
        if input_tensor and tensor != input_tensor:
            raise InvalidArgument("Input tensor must be the same for all Signatures.")
        input_tensor = tensor
        names.append(signature)
    return names


def fill_classifications(result: Any, classes: Any, scores: Any) -> None:
    """A ClassificationResult from [batch, classes] labels and scores (either may be None), as TF Serving fills it."""
    rows = (classes if classes is not None else scores).shape[0]
    width = (classes if classes is not None else scores).shape[1]
    for row in range(rows):
        classification = result.classifications.add()
        for column in range(width):
            item = classification.classes.add()
            if classes is not None:
                label = classes[row, column]
                item.label = label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
            if scores is not None:
                item.score = float(scores[row, column])


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    """tensorflow.serving.ModelService: status and config reloads."""

    def __init__(self, engine: Engine, reload: Callable[[Sequence[ModelConfig]], None]) -> None:
        self.engine = engine
        self._reload = reload

    async def GetModelStatus(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            if not request.HasField("model_spec"):
                raise InvalidArgument("Missing ModelSpec")
            spec = request.model_spec
            version = spec.version.value if spec.HasField("version") else None
            statuses = self.engine.status(spec.name, version)
        except TfServeError as exc:
            await _abort(context, exc)
        response = get_model_status_pb2.GetModelStatusResponse()
        for status in statuses:
            row = response.model_version_status.add(version=status.version, state=int(status.state))
            row.status.error_code = int(status.error_code)
            row.status.error_message = status.error_message
        return response

    async def HandleReloadConfigRequest(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            if request.config.WhichOneof("config") != "model_config_list":
                raise InvalidArgument(
                    "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                    "Only ModelConfigList is currently supported"
                )
            models = models_from_proto(request.config)
            # Loads block for seconds: keep the loop serving meanwhile.
            await asyncio.get_running_loop().run_in_executor(None, self._reload, models)
        except TfServeError as exc:
            await _abort(context, exc)
        response = model_management_pb2.ReloadConfigResponse()
        response.status.error_code = 0
        return response
