"""Fuzzing the REST and gRPC entry points (hypothesis, bounded): every answer is TF Serving's success or error
shape, never an uncaught failure, and the server keeps serving."""

from __future__ import annotations

import json

import grpc
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import predict_pb2

from tests.integration.server_process import ServerProcess
from tests.reliability.helpers import check_grpc_error, check_rest_answer, predict_stub

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.builds(lambda s: {"b64": s}, st.text(alphabet="AQab+/=!. ", max_size=8))
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["x", "y", "b64", "k"]), inner, max_size=3)
    ),
    max_leaves=20,
)
_keys = st.sampled_from(["instances", "inputs", "signature_name", "examples", "context", "x", "b64"])
_bodies = st.dictionaries(_keys, _json, max_size=3)
_signatures = st.sampled_from(["serving_default", "classify_x_to_y", "regress_x_to_y", "slow", "nope", ""])

_POST_PATHS = [
    "half_plus_two:predict",
    "half_plus_two:classify",
    "half_plus_two:regress",
    "faulty:predict",
    "faulty/versions/1:predict",
    "faulty/labels/stable:predict",
    "half_plus_two/versions/123:regress",
    "nope:predict",
    "half_plus_two:Predict",
    "half_plus_two/versions/x:predict",
    "",
]
_GET_PATHS = [
    "half_plus_two",
    "half_plus_two/metadata",
    "half_plus_two/versions/123/metadata",
    "faulty/labels/x/metadata",
    "faulty/versions/-1",
    "nope/metadata",
    "half_plus_two:predict",
]


def _encode(body: object) -> bytes:
    return json.dumps(body, allow_nan=True).encode()


@FUZZ
@given(path=st.sampled_from(_POST_PATHS), body=_bodies, signature=st.none() | _signatures)
def test_fuzz_rest_json_bodies(shared_server: ServerProcess, path: str, body: dict, signature: str | None) -> None:
    if signature is not None:
        body["signature_name"] = signature
    response = requests.post(f"{shared_server.url}/v1/models/{path}", data=_encode(body), timeout=30)
    check_rest_answer(response)


@FUZZ
@given(path=st.sampled_from(_POST_PATHS), raw=st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_fuzz_rest_raw_bytes(shared_server: ServerProcess, path: str, raw: bytes) -> None:
    response = requests.post(f"{shared_server.url}/v1/models/{path}", data=raw, timeout=30)
    check_rest_answer(response)


@settings(max_examples=60, deadline=None, database=None)
@given(
    path=st.sampled_from(_GET_PATHS) | st.text(alphabet="abc/:%0129-", max_size=20),
    method=st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "OPTIONS"]),
)
def test_fuzz_rest_urls_and_methods(shared_server: ServerProcess, path: str, method: str) -> None:
    response = requests.request(method, f"{shared_server.url}/v1/models/{path}", timeout=30)
    check_rest_answer(response)


_dims = st.lists(st.integers(min_value=-2, max_value=2**20) | st.sampled_from([0, 1, 2, 3]), max_size=4)
_dtypes = st.integers(min_value=0, max_value=30) | st.sampled_from([1, 1, 1, 7, 9, 101, 999])


@st.composite
def _tensors(draw: st.DrawFn) -> tensor_pb2.TensorProto:
    tensor = tensor_pb2.TensorProto(dtype=draw(_dtypes))
    for size in draw(_dims):
        tensor.tensor_shape.dim.add(size=size)
    tensor.tensor_shape.unknown_rank = draw(st.integers(0, 9)) == 0
    field = draw(st.sampled_from(["float_val", "int_val", "int64_val", "string_val", "bool_val", "content", "none"]))
    if field == "content":
        tensor.tensor_content = draw(st.binary(max_size=64))
    elif field == "float_val":
        tensor.float_val.extend(draw(st.lists(st.floats(width=32), max_size=8)))
    elif field == "int_val":
        tensor.int_val.extend(draw(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=8)))
    elif field == "int64_val":
        tensor.int64_val.extend(draw(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=8)))
    elif field == "string_val":
        tensor.string_val.extend(draw(st.lists(st.binary(max_size=16), max_size=4)))
    elif field == "bool_val":
        tensor.bool_val.extend(draw(st.lists(st.booleans(), max_size=8)))
    return tensor


@FUZZ
@given(
    model=st.sampled_from(["half_plus_two", "faulty", "", "nope"]),
    version=st.none() | st.sampled_from([1, 123, 7, -1]),
    signature=_signatures,
    inputs=st.dictionaries(st.sampled_from(["x", "y", "delay_ms", "inputs", ""]), _tensors(), max_size=2),
    output_filter=st.lists(st.sampled_from(["y", "nope"]), max_size=2),
)
def test_fuzz_grpc_predict(
    shared_server: ServerProcess, model: str, version: int | None, signature: str, inputs: dict, output_filter: list
) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    request.model_spec.signature_name = signature
    for alias, tensor in inputs.items():
        if alias == "delay_ms":  # keep the slow signature from sleeping long
            tensor.int64_val[:] = [min(max(v, 0), 10) for v in tensor.int64_val]
            tensor.ClearField("tensor_content")
        request.inputs[alias].CopyFrom(tensor)
    request.output_filter.extend(output_filter)
    channel, stub = predict_stub(shared_server.grpc_port)
    with channel:
        try:
            response = stub.Predict(request, timeout=30)
        except grpc.RpcError as error:
            check_grpc_error(error)
        else:
            assert response.model_spec.name == model


@FUZZ
@given(raw=st.binary(max_size=128))
def test_fuzz_grpc_raw_messages(shared_server: ServerProcess, raw: bytes) -> None:
    """Bytes that are not (or barely) a PredictRequest: a status, never a crash."""
    channel, _ = predict_stub(shared_server.grpc_port)
    with channel:
        call = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
        try:
            call(raw, timeout=30)
        except grpc.RpcError as error:
            check_grpc_error(error)


def test_server_survived_the_fuzzing(shared_server: ServerProcess) -> None:
    response = requests.post(f"{shared_server.url}/v1/models/half_plus_two:predict", json={"instances": [1.0]})
    assert response.json() == {"predictions": [2.5]}
    assert "Uncaught error" not in shared_server.log(), shared_server.log()[-3000:]
