"""Bad input over REST and gRPC: each gets TF Serving's error (code and message), nothing leaks, memory stays
bounded, and the server keeps serving."""

from __future__ import annotations

import socket
import time

import grpc
import numpy as np
import pytest
import requests
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2

from tests.integration.server_process import ServerProcess
from tests.reliability.conftest import BODY_LIMIT, GRPC_LIMIT
from tests.reliability.helpers import check_grpc_error, check_rest_answer, float_request, predict_stub, rss_bytes

DEEP = 100_000

# (case, url suffix, body, HTTP status, a piece of TF Serving's message)
REST_CASES = [
    (
        "malformed JSON",
        "half_plus_two:predict",
        b'{"instances": [1,',
        400,
        "JSON Parse error: Invalid value. at offset: 17",
    ),
    ("empty body", "half_plus_two:predict", b"", 400, "JSON Parse error: The document is empty"),
    ("not an object", "half_plus_two:predict", b"[1, 2]", 400, "Is not object"),
    (
        "wrong type",
        "half_plus_two:predict",
        b'{"instances": ["a"]}',
        400,
        "Type: String is not of expected type: float",
    ),
    ("bool for float", "half_plus_two:predict", b'{"inputs": [true]}', 400, "is not of expected type: float"),
    (
        "ragged rows",
        "half_plus_two:predict",
        b'{"instances": [[1, 2], [3]]}',
        400,
        "Expecting tensor size: 2 but got: 1",
    ),
    (
        "ragged columns",
        "half_plus_two:predict",
        b'{"inputs": [[1, 2], [3]]}',
        400,
        "Encountered list at unexpected size",
    ),
    (
        "rank mismatch",
        "faulty:predict",
        b'{"instances": [[1.0, 2.0]]}',
        400,
        # TensorFlow's own error from the graph (a session run feeding [1, 2] to x: [?] says the same).
        "The second input must be a scalar, but it has shape [2]",
    ),
    (
        "unknown signature",
        "half_plus_two:predict",
        b'{"signature_name": "nope", "instances": [1]}',
        400,
        'Serving signature name: "nope" not found in signature def',
    ),
    (
        "signature not a string",
        "half_plus_two:predict",
        b'{"signature_name": 1, "instances": [1]}',
        400,
        "'signature_name' key must be a string value.",
    ),
    (
        "unknown input (columnar)",
        "half_plus_two:predict",
        b'{"inputs": {"nope": [1]}}',
        400,
        "Missing named input: x in 'inputs' object.",
    ),
    (
        "unknown input (rows)",
        "half_plus_two:predict",
        b'{"instances": [{"nope": 1}]}',
        400,
        "does not have named input: nope",
    ),
    (
        "both keys",
        "half_plus_two:predict",
        b'{"instances": [1], "inputs": [1]}',
        400,
        "expecting only one of 'inputs' or 'instances' keys to exist",
    ),
    ("no key", "half_plus_two:predict", b'{"instancez": [1]}', 400, "Missing 'inputs' or 'instances' key"),
    ("empty instances", "half_plus_two:predict", b'{"instances": []}', 400, "No values in 'instances' array"),
    (
        "invalid base64",
        "half_plus_two:predict",
        b'{"signature_name": "classify_x_to_y", "inputs": [{"b64": "!!!"}]}',
        400,
        "Unable to base64 decode",
    ),
    (
        "b64 for a float",
        "half_plus_two:predict",
        b'{"instances": [{"b64": "AAAA"}]}',
        400,
        "Type: Object is not of expected type: float",
    ),
    (
        "deep nesting",
        "half_plus_two:predict",
        b'{"instances": ' + b"[" * DEEP + b"]" * DEEP + b"}",
        400,
        "JSON Parse error",
    ),
    (
        "rank over 64",
        "half_plus_two:predict",
        b'{"inputs": ' + b"[" * 65 + b"1" + b"]" * 65 + b"}",
        400,
        "Too many dimensions in tensor",
    ),
    (
        "rank over 64 (rows)",
        "half_plus_two:predict",
        b'{"instances": ' + b"[" * 80 + b"1" + b"]" * 80 + b"}",
        400,
        "Too many dimensions in tensor",
    ),
    ("unknown model", "nope:predict", b'{"instances": [1]}', 404, "Servable not found for request: Latest(nope)"),
    (
        "bad version",
        "half_plus_two/versions/99999999999999999999:predict",
        b'{"instances": [1]}',
        400,
        "Failed to convert version",
    ),
    ("unknown verb", "half_plus_two:explode", b'{"instances": [1]}', 400, "Malformed request: POST"),
    (
        "classify without examples",
        "half_plus_two:classify",
        b'{"instances": [1]}',
        400,
        "key 'examples' is expected and was not found",
    ),
    (
        "regress on a bad example",
        "half_plus_two:regress",
        b'{"examples": [1]}',
        400,
        "Example must be JSON object but got JSON Number",
    ),
    ("model raises at run time", "faulty:predict", b'{"instances": [1.0, -1.0]}', 400, "x must be non-negative"),
]


def _alive(server: ServerProcess) -> None:
    response = requests.post(f"{server.url}/v1/models/half_plus_two:predict", json={"instances": [1.0]}, timeout=10)
    assert response.json() == {"predictions": [2.5]}
    assert server.proc.poll() is None


@pytest.mark.parametrize(("case", "suffix", "body", "status", "message"), REST_CASES, ids=[c[0] for c in REST_CASES])
def test_rest_bad_input_gets_tf_serving_error(
    shared_server: ServerProcess, case: str, suffix: str, body: bytes, status: int, message: str
) -> None:
    started = time.monotonic()
    response = requests.post(f"{shared_server.url}/v1/models/{suffix}", data=body, timeout=30)
    elapsed = time.monotonic() - started
    answer = check_rest_answer(response)
    assert response.status_code == status, response.text[:500]
    assert message in answer["error"], answer["error"][:500]
    assert elapsed < 5, f"{case} took {elapsed:.1f}s"


def test_rest_nan_and_infinity_round_trip(shared_server: ServerProcess) -> None:
    response = requests.post(
        f"{shared_server.url}/v1/models/half_plus_two:predict", data=b'{"instances": [NaN, Infinity, -Infinity]}'
    )
    assert response.status_code == 200
    assert response.text.split() == ["{", '"predictions":', "[NaN,", "Infinity,", "-Infinity", "]", "}"]


def test_runtime_error_fails_only_its_own_request(shared_server: ServerProcess) -> None:
    """A model that raises (tf.debugging.assert) fails that request only; concurrent good ones succeed."""
    from concurrent.futures import ThreadPoolExecutor

    def call(x: float) -> requests.Response:
        return requests.post(f"{shared_server.url}/v1/models/faulty:predict", json={"instances": [x]}, timeout=30)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(call, [float(i) if i % 2 else -1.0 for i in range(40)]))
    for i, response in enumerate(answers):
        if i % 2:
            assert response.json() == {"predictions": [2.0 * i + 1.0]}
        else:
            assert response.status_code == 400
            assert "x must be non-negative" in check_rest_answer(response)["error"]
    _alive(shared_server)


def test_rest_body_over_limit_is_refused_with_413_before_it_is_read(shared_server: ServerProcess) -> None:
    url = f"{shared_server.url}/v1/models/half_plus_two:predict"
    before = rss_bytes(shared_server.proc.pid)
    big = b'{"instances": [' + b"1.0," * (BODY_LIMIT // 4) + b"1.0]}"
    for _ in range(5):
        response = requests.post(url, data=big, timeout=30)
        assert response.status_code == 413
        assert "larger than the limit of 1048576 bytes" in check_rest_answer(response)["error"]

    # Chunked (no Content-Length): counted as it arrives, dropped past the limit, still 413.
    def chunks():
        for _ in range(8):
            yield b"1.0," * (BODY_LIMIT // 16)

    response = requests.post(url, data=chunks(), timeout=30)
    assert response.status_code == 413
    # A body declared far over the limit: answered at once, never read.
    with socket.create_connection(("127.0.0.1", shared_server.rest_port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/models/half_plus_two:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n{"
        )
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 413"), head[:200]
    assert rss_bytes(shared_server.proc.pid) - before < 64 * 1024 * 1024
    # At the limit is fine.
    fits = b'{"instances": [' + b"1.0," * (BODY_LIMIT // 8) + b"1.0]}"
    assert requests.post(url, data=fits, timeout=30).status_code == 200
    _alive(shared_server)


def _tensor(dtype: int, dims: list[int], **values: object) -> tensor_pb2.TensorProto:
    tensor = tensor_pb2.TensorProto(dtype=dtype, **values)
    for size in dims:
        tensor.tensor_shape.dim.add(size=size)
    return tensor


GRPC_CASES = [
    (
        "rank over 64",
        "x",
        _tensor(types_pb2.DT_FLOAT, [1] * 65, float_val=[1.0]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "tensor parsing error: x",
    ),
    (
        "rank over 254",
        "x",
        _tensor(types_pb2.DT_FLOAT, [1] * 300, float_val=[1.0]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "tensor parsing error: x",
    ),
    (
        "negative dim",
        "x",
        _tensor(types_pb2.DT_FLOAT, [-5], float_val=[1.0]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "tensor parsing error: x",
    ),
    (
        "content too short",
        "x",
        _tensor(types_pb2.DT_FLOAT, [3], tensor_content=b"abc"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "tensor parsing error: x",
    ),
    (
        "wrong dtype",
        "x",
        _tensor(types_pb2.DT_STRING, [1], string_val=[b"a"]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "Type mismatch",
    ),
    (
        "unsupported dtype",
        "x",
        _tensor(types_pb2.DT_VARIANT, [1]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "tensor parsing error: x",
    ),
    (
        "unknown alias",
        "nope",
        _tensor(types_pb2.DT_FLOAT, [1], float_val=[1.0]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "not found in request",
    ),
    (
        "huge shape, tiny message",
        "x",
        _tensor(types_pb2.DT_FLOAT, [2**36], float_val=[1.0]),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "more than the limit of 1048576 bytes",
    ),
    (
        "overflowing shape",
        "x",
        _tensor(types_pb2.DT_FLOAT, [2**40, 2**40], float_val=[1.0]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "tensor parsing error: x",
    ),
]


@pytest.mark.parametrize(("case", "alias", "tensor", "code", "message"), GRPC_CASES, ids=[c[0] for c in GRPC_CASES])
def test_grpc_bad_input_gets_tf_serving_error(
    shared_server: ServerProcess,
    case: str,
    alias: str,
    tensor: tensor_pb2.TensorProto,
    code: grpc.StatusCode,
    message: str,
) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half_plus_two"
    request.inputs[alias].CopyFrom(tensor)
    channel, stub = predict_stub(shared_server.grpc_port)
    with channel, pytest.raises(grpc.RpcError) as caught:
        stub.Predict(request, timeout=30)
    check_grpc_error(caught.value)
    assert caught.value.code() == code, caught.value.details()
    assert message in caught.value.details()


def test_grpc_oversized_message_is_resource_exhausted_and_server_keeps_serving(shared_server: ServerProcess) -> None:
    before = rss_bytes(shared_server.proc.pid)
    channel, stub = predict_stub(shared_server.grpc_port)
    with channel:
        big = float_request("half_plus_two", list(np.zeros(GRPC_LIMIT // 4 + 1024, np.float32)))
        for _ in range(3):
            with pytest.raises(grpc.RpcError) as caught:
                stub.Predict(big, timeout=30)
            assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        fits = float_request("half_plus_two", [1.0] * 1000)
        assert stub.Predict(fits, timeout=30).outputs["y"].tensor_shape.dim[0].size == 1000
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(float_request("faulty", [-1.0]), timeout=30)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "x must be non-negative" in caught.value.details()
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(float_request("", [1.0]), timeout=30)
        assert caught.value.details() == "ModelSpec has no name specified."
    assert rss_bytes(shared_server.proc.pid) - before < 64 * 1024 * 1024
    _alive(shared_server)
