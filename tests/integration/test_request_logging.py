"""TF Serving's ``logging_config`` honoured: sampled ``PredictionLog`` records in TFRecord files, REST and gRPC alike."""

from __future__ import annotations

import math
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tests.integration.server_process import ServerProcess
from tests.integration.test_serve_command import run_cli

N = 120  # predicts per protocol and model


def config_text(testdata: Path, logs: Path) -> str:
    base = testdata / "saved_model_half_plus_two_cpu"

    def model(name: str, rate: float) -> str:
        return (
            f'config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" logging_config {{ '
            f'log_collector_config {{ type: "file" filename_prefix: "{logs / name}" }} '
            f"sampling_config {{ sampling_rate: {rate} }} }} }}\n"
        )

    return "model_config_list {\n" + model("every", 1.0) + model("quarter", 0.25) + "}\n"


def read(prefix: Path) -> list[prediction_log_pb2.PredictionLog]:
    out = []
    for path in sorted(prefix.parent.glob(prefix.name + "-*.tfrecord")):
        for data in tf.data.TFRecordDataset(str(path)):
            out.append(prediction_log_pb2.PredictionLog.FromString(data.numpy()))
    return out


def example(x: float) -> tf.train.Example:
    return tf.train.Example(
        features=tf.train.Features(feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[x]))})
    )


@pytest.fixture(scope="module")
def logged(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run a server with logging, send traffic, stop it (flushing its files); yield the log folder."""
    root = tmp_path_factory.mktemp("logging")
    logs = root / "logs"
    (root / "models.config").write_text(config_text(testdata, logs))
    proc = ServerProcess([f"--model_config_file={root / 'models.config'}"], log_path=root / "server.log")
    try:
        proc.wait_ready("every")
        proc.wait_ready("quarter")
        with requests.Session() as http, grpc.insecure_channel(f"127.0.0.1:{proc.grpc_port}") as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            for model in ("every", "quarter"):
                for i in range(N):
                    x = float(i)
                    answer = http.post(f"{proc.url}/v1/models/{model}:predict", json={"instances": [[x]]}, timeout=10)
                    assert answer.json() == {"predictions": [[x / 2 + 2]]}
                    request = predict_pb2.PredictRequest()
                    request.model_spec.name = model
                    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([[1000 + x]], np.float32)))
                    stub.Predict(request, timeout=10)
            classify = classification_pb2.ClassificationRequest()
            classify.model_spec.name, classify.model_spec.signature_name = "every", "classify_x_to_y"
            classify.input.example_list.examples.append(example(4.0))
            stub.Classify(classify, timeout=10)
            regress = regression_pb2.RegressionRequest()
            regress.model_spec.name, regress.model_spec.signature_name = "every", "regress_x_to_y"
            regress.input.example_list.examples.append(example(6.0))
            stub.Regress(regress, timeout=10)
            multi = inference_pb2.MultiInferenceRequest()
            task = multi.tasks.add(method_name="tensorflow/serving/regress")
            task.model_spec.name, task.model_spec.signature_name = "every", "regress_x_to_y"
            multi.input.example_list.examples.append(example(8.0))
            stub.MultiInference(multi, timeout=10)
    finally:
        assert proc.stop() == 0, proc.log()  # SIGTERM: the files are flushed and closed on the way out
    return logs


def test_every_request_is_logged_at_rate_one_as_sent_and_answered(logged: Path) -> None:
    logs = read(logged / "every")
    predicts = [log for log in logs if log.WhichOneof("log_type") == "predict_log"]
    assert len(predicts) == 2 * N  # N over REST, N over gRPC
    sent = []
    for log in predicts:
        meta = log.log_metadata
        assert (meta.model_spec.name, meta.model_spec.version.value, meta.model_spec.signature_name) == (
            "every",
            123,
            "serving_default",
        )
        assert meta.sampling_config.sampling_rate == 1.0
        assert meta.timestamp_secs > 1_700_000_000
        x = float(tf.make_ndarray(log.predict_log.request.inputs["x"]).ravel()[0])
        y = float(tf.make_ndarray(log.predict_log.response.outputs["y"]).ravel()[0])
        assert y == x / 2 + 2
        sent.append(x)
    assert sorted(sent) == sorted([float(i) for i in range(N)] + [1000.0 + i for i in range(N)])


def test_classify_regress_and_multi_inference_are_logged_as_their_kinds(logged: Path) -> None:
    kinds = {log.WhichOneof("log_type"): log for log in read(logged / "every")}
    classify = kinds["classify_log"]
    assert classify.classify_log.request.input.example_list.examples[0].features.feature["x"].float_list.value == [4.0]
    assert classify.classify_log.response.result.classifications[0].classes[0].score == 4.0
    assert kinds["regress_log"].regress_log.response.result.regressions[0].value == 5.0
    multi = kinds["multi_inference_log"].multi_inference_log
    assert multi.request.tasks[0].method_name == "tensorflow/serving/regress"
    assert multi.response.results[0].regression_result.regressions[0].value == 6.0
    assert multi.response.results[0].model_spec.version.value == 123


def test_a_quarter_of_the_requests_is_logged_at_rate_a_quarter(logged: Path) -> None:
    logs = read(logged / "quarter")
    count = len(logs)
    mean, sd = 2 * N * 0.25, math.sqrt(2 * N * 0.25 * 0.75)
    assert mean - 4.5 * sd <= count <= mean + 4.5 * sd, count  # binomial(240, 0.25): 60 +/- 30
    assert all(log.log_metadata.sampling_config.sampling_rate == 0.25 for log in logs)


def test_an_unregistered_collector_type_fails_at_config_load(testdata: Path, tmp_path: Path) -> None:
    base = testdata / "saved_model_half_plus_two_cpu"
    config = tmp_path / "models.config"
    config.write_text(
        f'model_config_list {{ config {{ name: "m" base_path: "{base}" logging_config {{ '
        f'log_collector_config {{ type: "pubsub" filename_prefix: "x" }} sampling_config {{ sampling_rate: 1 }} }} }} }}'
    )
    result = run_cli("serve", "--port=0", f"--grpc_socket_path={tmp_path / 's'}", f"--model_config_file={config}")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        'tfserve-lab: Cannot find LogCollector::Factory for type: pubsub (tfserve-lab registers the "file" collector only)'
    )


def test_log_files_roll_over_by_size(tmp_path: Path) -> None:
    from tfserve_lab.request_logging import TFRecordFiles

    files = TFRecordFiles(str(tmp_path / "roll"), max_bytes=1000)
    for _ in range(30):
        files.write(b"x" * 100)
    files.close()
    assert len(files.paths) >= 3
    assert sum(1 for path in files.paths for _ in tf.data.TFRecordDataset(path)) == 30
    again = TFRecordFiles(str(tmp_path / "roll"), max_bytes=1000)
    again.write(b"y")
    again.close()
    assert again.paths[0].endswith(f"roll-{len(files.paths):05d}.tfrecord"), "a new run numbers its files after the old"
