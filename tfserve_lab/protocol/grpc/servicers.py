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
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tfserve_lab.config import ModelConfig, models_from_proto
from tfserve_lab.core.dtypes import DT_NAME, DT_NUMBER, NUMPY_BY_DT
from tfserve_lab.core.engine import Engine
from tfserve_lab.core.types import DEFAULT_SIGNATURE, ClassifyResult, ModelSpec, RequestContext, SignatureInfo
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


class _Tensors:
    """A PredictRequest's input TensorProtos, decoded when the engine asks (``PredictDecoder``)."""

    __slots__ = ("_limit", "_request")

    def __init__(self, request: Any, limit: int) -> None:
        self._request = request
        self._limit = limit

    def signature_name(self) -> str:
        return str(self._request.model_spec.signature_name)

    def inputs(self, key: str, signature: SignatureInfo | None) -> dict[str, np.ndarray]:
        if signature is None:
            return {}  # TF Serving refuses the signature before it parses a tensor: the engine does
        inputs = {}
        for alias, tensor in self._request.inputs.items():
            _check_tensor_size(alias, tensor, self._limit)
            try:
                inputs[alias] = tensor_proto_to_ndarray(tensor)
            except (InvalidArgument, ValueError, MemoryError):
                # ValueError: shapes numpy cannot hold (rank > 64), TF Serving's "cannot parse" too.
                raise InvalidArgument(f"tensor parsing error: {alias}") from None
        return inputs


class _Examples:
    """A request's ``Input`` as serialized tf.Examples (``ExamplesDecoder``)."""

    __slots__ = ("_input", "_signature_name")

    def __init__(self, signature_name: str, input_proto: Any) -> None:
        self._signature_name = signature_name
        self._input = input_proto

    def signature_name(self) -> str:
        return self._signature_name

    def examples(self) -> list[bytes]:
        return serialized_examples(self._input)


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

    async def Predict(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        ctx = _context(context)
        try:
            result = await self.engine.predict(
                _spec(request.model_spec),
                _Tensors(request, self.max_tensor_bytes),
                headers=ctx.headers,
                output_filter=request.output_filter,
                context=ctx,
            )
        except TfServeError as exc:
            await _abort(context, exc)
        response = predict_pb2.PredictResponse()
        _fill_spec(response.model_spec, result.model_name, result.version, result.signature_name)
        for alias, array in result.outputs.items():
            fill_tensor_proto(response.outputs[alias], array, tensor_content=self.tensor_content)
        return response

    async def Classify(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        ctx = _context(context)
        body = _Examples(request.model_spec.signature_name, request.input)
        try:
            result = await self.engine.classify(_spec(request.model_spec), body, headers=ctx.headers, context=ctx)
        except TfServeError as exc:
            await _abort(context, exc)
        response = classification_pb2.ClassificationResponse()
        _fill_spec(response.model_spec, result.model_name, result.version, result.signature_name)
        fill_classifications(response.result, result.classes, result.scores)
        return response

    async def Regress(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        ctx = _context(context)
        body = _Examples(request.model_spec.signature_name, request.input)
        try:
            result = await self.engine.regress(_spec(request.model_spec), body, headers=ctx.headers, context=ctx)
        except TfServeError as exc:
            await _abort(context, exc)
        response = regression_pb2.RegressionResponse()
        _fill_spec(response.model_spec, result.model_name, result.version, result.signature_name)
        _fill_regressions(response.result, result.values)
        return response

    async def MultiInference(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        ctx = _context(context)
        tasks = [(t.model_spec.name, t.model_spec.signature_name, t.method_name) for t in request.tasks]
        first = request.tasks[0].model_spec if request.tasks else model_pb2.ModelSpec()
        try:
            results = await self.engine.multi_inference(
                _spec(first), tasks, _Examples(first.signature_name, request.input), headers=ctx.headers, context=ctx
            )
        except TfServeError as exc:
            await _abort(context, exc)
        response = inference_pb2.MultiInferenceResponse()
        for result in results:
            answer = response.results.add()
            if isinstance(result, ClassifyResult):
                fill_classifications(answer.classification_result, result.classes, result.scores)
            else:
                _fill_regressions(answer.regression_result, result.values)
            _fill_spec(answer.model_spec, result.model_name, result.version, result.signature_name)
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


def _fill_regressions(result: Any, values: np.ndarray) -> None:
    for value in values.tolist():
        result.regressions.add(value=value)


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
