"""``tfserve-lab serve`` with the flags whose meaning is a start-up rule or a listener: TF Serving's checks and words."""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.conftest import free_port, wait_until
from tests.integration.server_process import ServerProcess
from tests.integration.test_serve_command import run_cli


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--port=0", "--model_base_path=/m"],
            "At least one of server_options.grpc_port or server_options.grpc_socket_path must be set.",
        ),
        (
            ["--use_alts_credentials", "--ssl_config_file=/ssl.config", "--model_base_path=/m"],
            "Either use_alts_credentials must be false or ssl_config_file must be empty.",
        ),
        (
            [
                "--tensorflow_session_parallelism=2",
                "--tensorflow_intra_op_parallelism=2",
                "--tensorflow_inter_op_parallelism=2",
                "--model_base_path=/m",
            ],
            "Either configure server_options.tensorflow_session_parallelism or "
            "(server_options.tensorflow_intra_op_parallelism, server_options.tensorflow_inter_op_parallelism) "
            "separately. You cannot configure all.",
        ),
        (
            ["--num_tflite_interpreters_per_pool=2", "--model_base_path=/m"],
            "--num_tflite_interpreters_per_pool above 1 is not supported by tfserve-lab: TF Serving then batches and "
            "splits requests across its TF Lite interpreters; use --num_tflite_pools and --enable_batching.",
        ),
        (
            ["--mixed_precision=bfloat16"],
            "Flag --mixed_precision is not supported by tfserve-lab: the bfloat16 graph rewrite is not available; "
            "export the model in the precision it should serve in.",
        ),
    ],
)
def test_flag_combinations_tf_serving_refuses_fail_with_its_words(args: list[str], line: str) -> None:
    result = run_cli("serve", *args)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"tfserve-lab: {line}"]


def test_a_session_config_that_does_not_parse_fails_with_one_line(tmp_path: Path, testdata: Path) -> None:
    config = tmp_path / "session.config"
    config.write_text("inter_op_parallelism_threads: lots")
    base = testdata / "saved_model_half_plus_three"
    result = run_cli(
        "serve", f"--port={free_port()}", f"--model_base_path={base}", f"--tensorflow_session_config_file={config}"
    )
    assert result.returncode != 0
    line = result.stderr.strip().splitlines()[-1]  # after TensorFlow's own start-up lines
    assert line.startswith(
        f"tfserve-lab: Invalid protobuf file: '{config}' (Error parsing text-format tensorflow.ConfigProto: 1:"
    )


def test_alts_fails_to_listen_off_google_cloud(testdata: Path) -> None:
    base = testdata / "saved_model_half_plus_two_cpu"
    result = run_cli("serve", f"--port={free_port()}", f"--model_base_path={base}", "--use_alts_credentials")
    assert result.returncode != 0
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith("with ALTS credentials (--use_alts_credentials): gRPC offers ALTS only on Google Cloud.")
    )


def test_version_prints_both_versions() -> None:
    lines = run_cli("serve", "--version").stdout.splitlines()
    assert lines[0].startswith("TensorFlow ModelServer: tfserve-lab ")
    assert lines[1] == f"TensorFlow Library: {tf.__version__}"


def wait_for_grpc(address: str, model: str, timeout: float = 90.0) -> None:
    """Wait until the gRPC health service says ``model`` is SERVING."""
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)

        def serving() -> bool:
            try:
                return health.Check(health_pb2.HealthCheckRequest(service=model), timeout=2).status == 1
            except grpc.RpcError:
                return False

        wait_until(serving, timeout=timeout, what=f"{model} to be SERVING at {address}")


def health_of(channel: grpc.Channel, service: str) -> object:
    try:
        return (
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
        )
    except grpc.RpcError as error:
        return error.code()


def test_unix_socket_only_session_config_and_tf_serving_health_names(tmp_path: Path, testdata: Path) -> None:
    # --port=0 with a socket: no TCP listener. REST on its own port, a session config for the TF1 model.
    socket = tmp_path / "grpc.sock"
    config = tmp_path / "session.config"
    config.write_text("inter_op_parallelism_threads: 9\nallow_soft_placement: true\n")
    proc = ServerProcess(
        [
            f"--model_base_path={testdata / 'saved_model_half_plus_three'}",
            "--model_name=half_plus_three",
            "--port=0",
            f"--grpc_socket_path={socket}",
            f"--tensorflow_session_config_file={config}",
            "--tensorflow_intra_op_parallelism=1",
            "--enable_grpc_healthcheck_service",
        ],
        log_path=tmp_path / "server.log",
    )
    try:
        proc.wait_ready("half_plus_three")
        with grpc.insecure_channel(f"unix:{socket}") as channel:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "half_plus_three"
            request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0, 2.0], np.float32)))
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=10)
            assert list(response.outputs["y"].float_val) == [3.5, 4.0]
            assert health_of(channel, "PredictionService") == health_pb2.HealthCheckResponse.SERVING
            assert health_of(channel, "ModelService") == health_pb2.HealthCheckResponse.SERVING
        assert "Running gRPC ModelServer at UNIX socket" in proc.log()
        assert "Running gRPC ModelServer at 0.0.0.0" not in proc.log()
    finally:
        proc.stop()


def test_rest_on_the_grpc_port_is_skipped_with_an_error_and_health_names_need_the_flag(
    tmp_path: Path, testdata: Path
) -> None:
    port = free_port()
    proc = ServerProcess(
        [f"--model_base_path={testdata / 'saved_model_half_plus_two_cpu'}", f"--rest_api_port={port}"],
        log_path=tmp_path / "server.log",
        rest=False,
        grpc_port=port,
    )
    try:
        address = f"127.0.0.1:{port}"
        wait_for_grpc(address, "default")
        with grpc.insecure_channel(address) as channel:
            assert health_of(channel, "PredictionService") == grpc.StatusCode.NOT_FOUND
        assert "server_options.http_port cannot be same as grpc_port." in proc.log()
        assert "Exporting HTTP/REST API" not in proc.log()
    finally:
        proc.stop()
