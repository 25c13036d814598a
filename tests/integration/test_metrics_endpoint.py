"""The Prometheus endpoint and the live statistics after real REST and gRPC traffic."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests
import tensorflow as tf
from prometheus_client.parser import text_string_to_metric_families
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tfserve_lab.config import ServerOptions
from tfserve_lab.results import Started
from tfserve_lab.server import ServingSession

CONFIG = """
model_config_list {
  config { name: "two" base_path: "%s" model_platform: "tensorflow" model_version_policy { all {} } }
}
"""


@pytest.fixture(scope="module")
def session(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServingSession]:
    tmp = tmp_path_factory.mktemp("metrics")
    config = tmp / "models.config"
    config.write_text(CONFIG % (testdata / "saved_model_half_plus_two_2_versions"))
    options = ServerOptions(
        port=0,
        grpc_port_enabled=True,
        rest_api_port=0,
        rest_api_enabled=True,
        host="127.0.0.1",
        model_config_file=str(config),
        monitoring_config_file=str(testdata / "monitoring_config.txt"),
    )
    serving = ServingSession(options)
    assert isinstance(serving.start(), Started)
    try:
        yield serving
    finally:
        serving.stop()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            # The parser reads TF Serving's suffix-less counters as NAME_total; key them by the exposed name.
            name = sample.name.removesuffix("_total") if family.type == "counter" else sample.name
            found[(name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_counts_and_buckets_match_traffic(session: ServingSession) -> None:
    url = session.info.rest_url
    for _ in range(7):
        assert requests.post(f"{url}/v1/models/two/versions/123:predict", json={"instances": [1.0]}, timeout=10).ok
    for _ in range(3):
        assert requests.post(f"{url}/v1/models/two/versions/124:predict", json={"instances": [1.0, 2.0]}, timeout=10).ok
    for _ in range(2):
        assert requests.post(f"{url}/v1/models/two:predict", json={"nope": 1}, timeout=10).status_code == 400
    with grpc.insecure_channel(f"127.0.0.1:{session.info.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "two"
        request.model_spec.version.value = 124
        request.inputs["x"].CopyFrom(tf.make_tensor_proto([1.0], dtype=tf.float32))
        for _ in range(5):
            stub.Predict(request, timeout=10)

    response = requests.get(f"{url}/monitoring/prometheus/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.text
    found = samples(text)

    # TF Serving's own families, as its exporter prints them.
    assert found[(":tensorflow:serving:request_count", (("model_name", "two"), ("status", "OK")))] == 15
    assert found[(":tensorflow:serving:request_count", (("model_name", "two"), ("status", "INVALID_ARGUMENT")))] == 2
    assert ':tensorflow:serving:request_count{model_name="two",status="OK"} 15' in text
    rest = (("API", "predict"), ("entrypoint", "REST"), ("model_name", "two"))
    grpc_labels = (("API", "Predict"), ("entrypoint", "GRPC"), ("model_name", "two"))
    assert found[(":tensorflow:serving:request_latency_count", rest)] == 10
    assert found[(":tensorflow:serving:request_latency_count", grpc_labels)] == 5
    assert found[(":tensorflow:serving:request_latency_bucket", (*rest[:2], ("le", "+Inf"), rest[2]))] == 10

    # The tutorial's families, per version, protocol and status.
    def tutorial(version: str, protocol: str, status: str = "OK") -> float:
        return sum(
            value
            for (name, labels), value in found.items()
            if name == "tensorflow_serving_request_count"
            and dict(labels).get("version") == version
            and dict(labels).get("protocol") == protocol
            and dict(labels).get("status") == status
        )

    assert tutorial("123", "rest") == 7
    assert tutorial("124", "rest") == 3
    assert tutorial("124", "grpc") == 5
    # The two bodies without inputs were refused against the latest version's signature: they count for it.
    assert tutorial("124", "rest", "INVALID_ARGUMENT") == 2
    assert any(name == "tensorflow_serving_request_latency_bucket" for name, _ in found)
    assert any(name == "tensorflow_serving_model_load_latency_seconds" for name, _ in found)

    stats = requests.get(f"{url}/tfserve-lab/stats", timeout=10).json()
    versions = stats["models"]["two"]["versions"]
    assert versions["123"]["requests"] == 7
    assert versions["124"]["requests"] == 10
    assert versions["124"]["errors"] == 2
    assert versions["123"]["errors"] == 0
    assert versions["123"]["latency_ms"]["p50"] > 0


def test_metrics_off_without_monitoring_config(testdata: Path) -> None:
    options = ServerOptions(
        port=0,
        grpc_port_enabled=True,
        rest_api_port=0,
        rest_api_enabled=True,
        host="127.0.0.1",
        model_name="half_plus_two",
        model_base_path=str(testdata / "saved_model_half_plus_two_cpu"),
    )
    serving = ServingSession(options)
    assert isinstance(serving.start(), Started)
    try:
        response = requests.get(f"{serving.info.rest_url}/monitoring/prometheus/metrics", timeout=10)
        assert response.status_code == 404
    finally:
        serving.stop()
