"""Client helpers for the reliability suite: REST and gRPC calls, server memory, TF Serving error shapes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import requests
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

# What a leaked Python failure looks like in an answer.
LEAK = re.compile(r"Traceback \(most recent call last\)|File \"/|Unexpected <class|Exception calling application")


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def check_rest_answer(response: requests.Response) -> dict[str, Any]:
    """A REST answer is JSON in TF Serving's shape: 200 with a result, or an error code with {"error": str}."""
    assert not LEAK.search(response.text), response.text[:2000]
    body = json.loads(response.text.replace("NaN", "null").replace("-Infinity", "null").replace("Infinity", "null"))
    if response.status_code == 200:
        assert isinstance(body, dict), body
        assert "error" not in body, body
    else:
        assert response.status_code in (400, 401, 404, 413, 429, 501, 503, 504), (response.status_code, response.text)
        assert isinstance(body, dict), body
        assert set(body) == {"error"}, body
        assert isinstance(body["error"], str), body
    return body


def check_grpc_error(error: grpc.RpcError) -> None:
    """A gRPC failure is a deliberate status with a sentence, never an uncaught Python exception."""
    assert error.code() not in (grpc.StatusCode.UNKNOWN,), (error.code(), error.details())
    assert not LEAK.search(error.details() or ""), error.details()


def predict_stub(port: int) -> tuple[grpc.Channel, Any]:
    """An insecure channel to 127.0.0.1 and its PredictionService stub."""
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", -1)])
    return channel, prediction_service_pb2_grpc.PredictionServiceStub(channel)


def float_request(model: str, values: list[float], *, version: int | None = None, alias: str = "x") -> Any:
    """A PredictRequest with one float tensor."""
    import tensorflow as tf

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    request.inputs[alias].CopyFrom(tf.make_tensor_proto(np.asarray(values, np.float32)))
    return request
