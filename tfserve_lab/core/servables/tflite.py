"""TensorFlow Lite servables: ``model.tflite`` run by tf.lite.Interpreter, named as TF Serving's TfLiteSession names it."""

from __future__ import annotations

import dataclasses
import os
import struct
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np

from tfserve_lab.core.dtypes import dt_for_numpy
from tfserve_lab.core.servables.checks import bind_inputs, find_signature, select_outputs
from tfserve_lab.core.servables.saved_model_reader import tensor_info_from_proto
from tfserve_lab.core.servables.tf_errors import tf_error
from tfserve_lab.core.servables.tf_setup import import_tensorflow
from tfserve_lab.core.servables.warmup import run_warmup
from tfserve_lab.core.types import DEFAULT_SIGNATURE, Dim, SignatureInfo, TensorInfo
from tfserve_lab.errors import ErrorCode, FailedPrecondition, InvalidArgument, TfServeError

__all__ = ["TFLITE_FILE", "TfLiteServable", "load_tflite_model"]

TFLITE_FILE = "model.tflite"
SIGNATURE_DEFS_METADATA = b"signature_defs_metadata"  # tflite::kSignatureDefsMetadataName
PREDICT_METHOD = "tensorflow/serving/predict"
# tflite::TensorType numbers (schema.fbs) -> numpy; 5 is STRING.
_TFLITE_NUMPY: dict[int, Any] = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 5: object, 6: np.bool_, 7: np.int16, 8: np.complex64, 9: np.int8, 10: np.float64}  # fmt: skip

Bindings = tuple[dict[str, int], dict[str, int]]  # input and output alias -> tensor index


class _Slot(Protocol):
    def run(self, feeds: Sequence[tuple[int, np.ndarray]], fetches: Sequence[int]) -> list[Any]: ...


class _InterpreterSlot:
    """One tf.lite.Interpreter; input tensors are resized when a request's shapes differ."""

    def __init__(self, data: bytes) -> None:
        self._interpreter = _new_interpreter(data)
        self._interpreter.allocate_tensors()
        self._shapes = {d["index"]: tuple(d["shape"]) for d in self._interpreter.get_input_details()}

    def run(self, feeds: Sequence[tuple[int, np.ndarray]], fetches: Sequence[int]) -> list[Any]:
        interpreter = self._interpreter
        resized = False
        for index, value in feeds:
            if self._shapes.get(index) != value.shape:
                interpreter.resize_tensor_input(index, list(value.shape))
                self._shapes[index] = value.shape
                resized = True
        if resized:
            interpreter.allocate_tensors()
        for index, value in feeds:
            interpreter.set_tensor(index, value)
        interpreter.invoke()
        return [interpreter.get_tensor(index) for index in fetches]  # get_tensor copies


class _ParseExampleSlot:
    """A model made of one ParseExampleV2 custom op, run with TensorFlow's own op.

    TF Serving registers TF Lite's ParseExample kernel; the interpreter in the TensorFlow
    wheel lacks it ("Encountered unresolved custom op"), so the op's constant inputs are
    read from the flatbuffer and fed to ``tf.raw_ops.ParseExampleV2``.
    """

    def __init__(self, model: Any) -> None:
        from flatbuffers import flexbuffers

        graph = model.Subgraphs(0)
        op = graph.Operators(0)
        options = flexbuffers.Loads(op.CustomOptionsAsNumpy().tobytes()) if op.CustomOptionsLength() else {}
        inputs = [int(i) for i in op.InputsAsNumpy()]
        names, sparse_keys, dense_keys, ragged_keys = (_constant(model, graph, i) for i in inputs[1:5])
        if options.get("num_sparse", 0) or sparse_keys.size or ragged_keys.size:
            raise TfServeError("Only dense features of ParseExampleV2 are supported.", code=ErrorCode.UNIMPLEMENTED)
        self._serialized = inputs[0]
        self._names, self._dense_keys = names, dense_keys
        self._defaults = [_constant(model, graph, i) for i in inputs[5:]]
        self._outputs = [int(i) for i in op.OutputsAsNumpy()]
        self._shapes = [[int(d) for d in _signature_shape(graph.Tensors(i))[1:]] for i in self._outputs]

    def run(self, feeds: Sequence[tuple[int, np.ndarray]], fetches: Sequence[int]) -> list[Any]:
        tf = import_tensorflow()
        serialized = dict(feeds)[self._serialized]
        result = tf.raw_ops.ParseExampleV2(
            serialized=serialized,
            names=tf.constant(self._names, tf.string),
            sparse_keys=tf.constant([], tf.string),
            dense_keys=tf.constant(self._dense_keys, tf.string),
            ragged_keys=tf.constant([], tf.string),
            dense_defaults=self._defaults,
            num_sparse=0,
            sparse_types=[],
            ragged_value_types=[],
            ragged_split_types=[],
            dense_shapes=self._shapes,
        )
        values = dict(zip(self._outputs, result.dense_values, strict=True))
        return [values[index].numpy() for index in fetches]


class _Pool:
    """Interpreters made on demand up to a limit (TF Serving's interpreter pool); one per run."""

    def __init__(self, factory: Callable[[], _Slot], limit: int, first: _Slot) -> None:
        self._factory, self._limit = factory, max(1, limit)
        self._free: list[_Slot] = [first]
        self._created = 1
        self._cond = threading.Condition()

    @contextmanager
    def slot(self) -> Iterator[_Slot]:
        with self._cond:
            while not self._free and self._created >= self._limit:
                self._cond.wait()
            slot = self._free.pop() if self._free else None
            if slot is None:
                self._created += 1
        healthy = False
        try:
            if slot is None:
                slot = self._factory()
            yield slot
            healthy = True
        finally:
            with self._cond:
                if healthy and slot is not None:
                    self._free.append(slot)
                else:  # a failed run may leave tensors half-resized: make a fresh interpreter next time
                    self._created -= 1
                self._cond.notify()


class TfLiteServable:
    """A loaded ``model.tflite``; ``run`` borrows an interpreter (they are not thread-safe)."""

    runner = "tflite"

    def __init__(
        self, path: str, signatures: dict[str, SignatureInfo], bindings: dict[str, Bindings], pool: _Pool
    ) -> None:
        self.path = path
        self._signatures = signatures
        self._bindings = bindings
        self._pool: _Pool | None = pool
        self.warmup_records = 0
        self.warmup_latency_s = 0.0

    @property
    def signatures(self) -> Mapping[str, SignatureInfo]:
        """SignatureDefs by key: the model's own, or TF Serving's generated serving_default."""
        return self._signatures

    def run(
        self, signature_name: str, inputs: Mapping[str, np.ndarray], output_keys: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Run a signature; aliases are checked as TF Serving checks them."""
        name = signature_name or DEFAULT_SIGNATURE
        signature = find_signature(self._signatures, name)
        bound = bind_inputs(signature, inputs)
        outputs = select_outputs(signature, output_keys)
        input_index, output_index = self._bindings[name]
        pool = self._pool
        if pool is None:
            raise FailedPrecondition(f"The TF Lite model at {self.path} was unloaded.")
        tf = import_tensorflow()
        try:
            with pool.slot() as slot:
                values = slot.run([(input_index[a], v) for a, v in bound.items()], [output_index[a] for a in outputs])
        except ValueError as exc:  # set_tensor's dtype or shape complaints
            raise InvalidArgument(str(exc).strip().splitlines()[0]) from exc
        except RuntimeError as exc:
            raise TfServeError(
                f"Failed to invoke TfLite interpreter: {_first_line(exc)}", code=ErrorCode.INTERNAL
            ) from exc
        except tf.errors.OpError as exc:
            raise tf_error(exc) from exc
        return {alias: np.asarray(value) for alias, value in zip(outputs, values, strict=True)}

    def close(self) -> None:
        """Drop the interpreters."""
        self._pool = None


def load_tflite_model(
    path: str,
    *,
    warmup: bool = True,
    num_request_iterations_for_warmup: int = 0,
    num_interpreters: int | None = None,
) -> TfLiteServable:
    """Load ``model.tflite`` from a version folder, then replay its warmup requests.

    Args:
        path: The version folder.
        warmup: Replay ``assets.extra/tf_serving_warmup_requests``.
        num_request_iterations_for_warmup: Times each warmup record runs; 0 means once.
        num_interpreters: Most interpreters made for concurrent runs (default: CPU count,
            TF Serving's ``--num_tflite_pools``).

    Returns:
        The servable, with TF Serving's signatures: the model's SignatureDefs metadata when
        present, else ``serving_default`` over the input and output tensors.

    Raises:
        TfServeError: When the file is missing, malformed or its ops cannot run.
    """
    file = os.path.join(path, TFLITE_FILE)
    try:
        with open(file, "rb") as f:
            data = f.read()
    except FileNotFoundError as exc:
        raise TfServeError(f"{file}; No such file or directory", code=ErrorCode.NOT_FOUND) from exc
    try:
        probe = _new_interpreter(data)
    except ValueError as exc:
        raise InvalidArgument("Cannot build FlatBufferModel from buffer.") from exc
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(data, 0)
    inputs = {d["name"]: (d["index"], _details_info(d)) for d in probe.get_input_details()}
    outputs = {d["name"]: (d["index"], _details_info(d)) for d in probe.get_output_details()}
    signatures, bindings = _signatures(_metadata_signature_defs(model), inputs, outputs)
    factory: Callable[[], _Slot] = (
        (lambda: _ParseExampleSlot(model)) if _only_parse_example(model) else (lambda: _InterpreterSlot(data))
    )
    try:
        first = factory()
    except (RuntimeError, ValueError) as exc:
        raise TfServeError(
            f"Cannot build Interpreter from buffer: {_first_line(exc)}", code=ErrorCode.INTERNAL
        ) from exc
    servable = TfLiteServable(
        path, signatures, bindings, _Pool(factory, num_interpreters or os.cpu_count() or 1, first)
    )
    if warmup:
        servable.warmup_records, servable.warmup_latency_s = run_warmup(
            servable, path, num_request_iterations_for_warmup
        )
    return servable


def _new_interpreter(data: bytes) -> Any:
    with warnings.catch_warnings():
        # The TensorFlow wheel's interpreter warns that LiteRT will replace it; it is the one we want.
        warnings.filterwarnings(
            "ignore", message=r"\s*Warning: tf\.lite\.Interpreter is deprecated", category=UserWarning
        )
        return import_tensorflow().lite.Interpreter(model_content=data)


def _details_info(details: Mapping[str, Any]) -> TensorInfo:
    dims = tuple(Dim(int(s)) for s in details["shape"])
    return TensorInfo(details["name"], dt_for_numpy(np.dtype(details["dtype"])), dims)


def _signatures(
    sigdefs: Mapping[str, Any], inputs: dict[str, tuple[int, TensorInfo]], outputs: dict[str, tuple[int, TensorInfo]]
) -> tuple[dict[str, SignatureInfo], dict[str, Bindings]]:
    """TfLiteSession::Create: metadata SignatureDefs with names fixed, or a generated serving_default."""
    signatures: dict[str, SignatureInfo] = {}
    bindings: dict[str, Bindings] = {}
    if not sigdefs:
        # Aliases are tensor names without ":N"; TensorInfo keeps the TF Lite name and current dims.
        signatures[DEFAULT_SIGNATURE] = SignatureInfo(
            PREDICT_METHOD,
            {name.split(":", 1)[0]: info for name, (_, info) in inputs.items()},
            {name.split(":", 1)[0]: info for name, (_, info) in outputs.items()},
        )
        bindings[DEFAULT_SIGNATURE] = (
            {name.split(":", 1)[0]: index for name, (index, _) in inputs.items()},
            {name.split(":", 1)[0]: index for name, (index, _) in outputs.items()},
        )
        return signatures, bindings
    for key, sigdef in sigdefs.items():
        sides: list[tuple[dict[str, TensorInfo], dict[str, int]]] = []
        for kind, tensors, known in (("input", sigdef.inputs, inputs), ("output", sigdef.outputs, outputs)):
            infos, indices = {}, {}
            for alias, proto in tensors.items():
                name = _fix_name(proto.name, known, f"Signature {kind} {alias} references an unknown tensor")
                infos[alias] = dataclasses.replace(tensor_info_from_proto(proto), name=name)
                indices[alias] = known[name][0]
            sides.append((infos, indices))
        signatures[key] = SignatureInfo(sigdef.method_name, sides[0][0], sides[1][0])
        bindings[key] = (sides[0][1], sides[1][1])
    return signatures, bindings


def _fix_name(name: str, known: Mapping[str, Any], context: str) -> str:
    """FixTfLiteTensorName: the name itself, else the legacy name without ":N"."""
    if name in known:
        return name
    legacy = name.split(":", 1)[0]
    if legacy in known:
        return legacy
    raise TfServeError(f"Unknown tensor '{name}'.\n\t{context}", code=ErrorCode.INTERNAL)


def _metadata_signature_defs(model: Any) -> dict[str, Any]:
    """The ``signature_defs_metadata`` FlexBuffer map of serialized SignatureDefs, if any."""
    from flatbuffers import flexbuffers
    from google.protobuf import message
    from tensorflow.core.protobuf import meta_graph_pb2

    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() != SIGNATURE_DEFS_METADATA:
            continue
        try:
            root = flexbuffers.GetRoot(_buffer_bytes(model, entry.Buffer())).AsMap
            result = {}
            for key, value in zip(root.Keys, root.Values, strict=True):
                sigdef = meta_graph_pb2.SignatureDef()
                sigdef.ParseFromString(bytes(value.AsStringBytes))
                result[key.AsKey] = sigdef
        except (ValueError, IndexError, TypeError, struct.error, message.DecodeError) as exc:
            raise InvalidArgument(f"Invalid SignatureDefs found in TfLite model: {exc}") from exc
        return result
    return {}


def _only_parse_example(model: Any) -> bool:
    if model.SubgraphsLength() != 1 or model.Subgraphs(0).OperatorsLength() != 1:
        return False
    op = model.Subgraphs(0).Operators(0)
    return bool(model.OperatorCodes(op.OpcodeIndex()).CustomCode() == b"ParseExampleV2")


def _buffer_bytes(model: Any, index: int) -> bytes:
    buffer = model.Buffers(index)
    return buffer.DataAsNumpy().tobytes() if buffer.DataLength() else b""


def _signature_shape(tensor: Any) -> Sequence[int]:
    shape = tensor.ShapeSignatureAsNumpy() if tensor.ShapeSignatureLength() else tensor.ShapeAsNumpy()
    return [int(size) for size in shape]


def _constant(model: Any, graph: Any, index: int) -> np.ndarray:
    """A constant tensor's value; strings use TF Lite's layout (count, offsets, bytes)."""
    tensor = graph.Tensors(index)
    raw = _buffer_bytes(model, tensor.Buffer())
    shape = [int(d) for d in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else []
    dtype = _TFLITE_NUMPY[tensor.Type()]
    if dtype is not object:
        return np.frombuffer(raw, dtype=dtype).reshape(shape)
    count = int(np.frombuffer(raw[:4], np.int32)[0]) if raw else 0
    offsets = np.frombuffer(raw[4 : 8 + 4 * count], np.int32)
    strings = [raw[offsets[i] : offsets[i + 1]] for i in range(count)]
    return np.array(strings, dtype=object).reshape(shape)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
