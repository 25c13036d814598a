"""Traffic splits and model-version header routing through real REST and gRPC servers."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tfserve_lab.config import ModelConfig, ServerOptions, VersionPolicy
from tfserve_lab.core.router import Router, TrafficSplit
from tfserve_lab.core.servables.callable import CallableServable, tensor_info
from tfserve_lab.core.types import ModelSpec, SignatureInfo
from tfserve_lab.errors import InvalidArgument
from tfserve_lab.results import Started
from tfserve_lab.server import ServingSession

SIG = SignatureInfo("tensorflow/serving/predict", {"x": tensor_info("x:0")}, {"y": tensor_info("y:0")})


def add_version(path: str) -> CallableServable:
    """y = x + version: every answer names the version that computed it."""
    version = float(os.path.basename(path))
    return CallableServable({"serving_default": (SIG, lambda i: {"y": i["x"] + version})})


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServingSession]:
    base = tmp_path_factory.mktemp("routing") / "m"
    for version in (1, 2, 3):
        (base / str(version)).mkdir(parents=True)
    options = ServerOptions(
        port=0,
        grpc_port_enabled=True,
        rest_api_port=0,
        rest_api_enabled=True,
        host="127.0.0.1",
        models=(
            ModelConfig("m", str(base), version_policy=VersionPolicy("all"), version_labels={"stable": 1, "canary": 2}),
        ),
    )
    serving = ServingSession(options, loader=add_version)
    assert isinstance(serving.start(), Started)
    serving.engine.router.set_split("m", TrafficSplit({1: 90, 2: 10}))
    try:
        yield serving
    finally:
        serving.stop()


def rest_version(session: ServingSession, path: str = "/v1/models/m:predict", **headers: str) -> int:
    url = f"{session.info.rest_url}{path}"
    response = requests.post(url, json={"instances": [[0.0]]}, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return int(response.json()["predictions"][0][0])


def test_split_shares_over_2000_requests(session: ServingSession) -> None:
    url = f"{session.info.rest_url}/v1/models/m:predict"
    counts: Counter[int] = Counter()
    with requests.Session() as http, grpc.insecure_channel(f"127.0.0.1:{session.info.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "m"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 1), np.float32)))
        for index in range(2000):
            if index % 2:
                response = stub.Predict(request, timeout=10)
                assert float(tf.make_ndarray(response.outputs["y"])[0, 0]) == response.model_spec.version.value
                counts[response.model_spec.version.value] += 1
            else:
                counts[int(http.post(url, json={"instances": [[0.0]]}, timeout=10).json()["predictions"][0][0])] += 1
    assert set(counts) == {1, 2}
    assert abs(counts[1] / 2000 - 0.90) <= 0.03
    assert abs(counts[2] / 2000 - 0.10) <= 0.03


def test_header_routing_is_exact_and_explicit_versions_untouched(session: ServingSession) -> None:
    assert {rest_version(session, **{"model-version": "3"}) for _ in range(50)} == {3}
    assert {rest_version(session, "/v1/models/m/versions/3:predict") for _ in range(50)} == {3}
    assert {rest_version(session, "/v1/models/m/labels/stable:predict") for _ in range(50)} == {1}
    with grpc.insecure_channel(f"127.0.0.1:{session.info.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "m"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 1), np.float32)))
        assert {
            stub.Predict(request, metadata=[("model-version", "3")], timeout=10).model_spec.version.value
            for _ in range(50)
        } == {3}
        request.model_spec.version.value = 2
        assert {stub.Predict(request, timeout=10).model_spec.version.value for _ in range(50)} == {2}


def grpc_version(stub: prediction_service_pb2_grpc.PredictionServiceStub, header: str) -> int:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 1), np.float32)))
    response = stub.Predict(request, metadata=[("model-version", header)], timeout=10)
    assert float(tf.make_ndarray(response.outputs["y"])[0, 0]) == response.model_spec.version.value
    return response.model_spec.version.value


@pytest.mark.parametrize(
    ("header", "version"), [("1", 1), ("v1", 1), ("V1", 1), ("stable", 1), ("v2", 2), ("canary", 2)]
)
def test_the_tutorials_version_header_pins_under_a_90_10_split(
    session: ServingSession, header: str, version: int
) -> None:
    # The tutorial's clients send "model-version: v1"; numbers and the model's labels pin as well.
    assert {rest_version(session, **{"model-version": header}) for _ in range(40)} == {version}
    with grpc.insecure_channel(f"127.0.0.1:{session.info.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        assert {grpc_version(stub, header) for _ in range(40)} == {version}


@pytest.mark.parametrize("header", ["x1", "gold", "v", "1.0", "01"])
def test_other_version_header_values_are_refused_naming_the_forms(session: ServingSession, header: str) -> None:
    message = f"Header model-version must be a version (1 or v1) or a version label of model m, got '{header}'"
    bad = requests.post(
        f"{session.info.rest_url}/v1/models/m:predict",
        json={"instances": [[0.0]]},
        headers={"model-version": header},
        timeout=10,
    )
    assert (bad.status_code, bad.json()) == (400, {"error": message})
    with grpc.insecure_channel(f"127.0.0.1:{session.info.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            grpc_version(stub, header)
    assert (info.value.code(), info.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)


def test_summary_shows_split(session: ServingSession) -> None:
    summary = requests.get(f"{session.info.rest_url}/tfserve-lab/summary", timeout=10).json()
    assert summary["models"][0]["split"] == {"1": 90, "2": 10}


def test_router_unit() -> None:
    router = Router(seed=1)
    spec = ModelSpec("m")
    assert router.route(spec) is spec
    router.set_split("m", TrafficSplit({5: 1}))
    assert router.route(spec).version == 5
    assert router.route(ModelSpec("m", version=2)).version == 2
    assert router.route(ModelSpec("m", label="x")).label == "x"
    assert router.route(spec, {"model-version": "7"}).version == 7
    router.set_split("m", None)
    assert router.route(spec) is spec
    with pytest.raises(InvalidArgument, match=r"^Split weights must be non-negative and not all zero\.$"):
        TrafficSplit({1: 0})
    with pytest.raises(InvalidArgument, match=r"^A traffic split needs at least one version\.$"):
        TrafficSplit({})
