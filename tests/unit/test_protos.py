"""The compiled TF Serving protos: TF Serving's names and numbers, the shared text configs parse."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool, text_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from tfserve_lab.protos import monitoring_config_pb2, session_bundle_config_pb2, ssl_config_pb2

WRAPPER = FieldDescriptor.TYPE_MESSAGE


def fields(descriptor: Descriptor) -> dict[str, tuple[int, int, str]]:
    """name -> (number, type, message type name or "") for every field."""
    return {
        field.name: (field.number, field.type, field.message_type.full_name if field.message_type else "")
        for field in descriptor.fields
    }


def test_batching_parameters_match_tf_serving() -> None:
    descriptor = session_bundle_config_pb2.BatchingParameters.DESCRIPTOR
    assert descriptor.full_name == "tensorflow.serving.BatchingParameters"
    assert fields(descriptor) == {
        "max_batch_size": (1, WRAPPER, "google.protobuf.Int64Value"),
        "batch_timeout_micros": (2, WRAPPER, "google.protobuf.Int64Value"),
        "max_enqueued_batches": (3, WRAPPER, "google.protobuf.Int64Value"),
        "num_batch_threads": (4, WRAPPER, "google.protobuf.Int64Value"),
        "thread_pool_name": (5, WRAPPER, "google.protobuf.StringValue"),
        "allowed_batch_sizes": (6, FieldDescriptor.TYPE_INT64, ""),
        "pad_variable_length_inputs": (7, FieldDescriptor.TYPE_BOOL, ""),
        "enable_large_batch_splitting": (8, WRAPPER, "google.protobuf.BoolValue"),
        "max_execution_batch_size": (9, WRAPPER, "google.protobuf.Int64Value"),
    }
    allowed = descriptor.fields_by_name["allowed_batch_sizes"]
    assert allowed.is_repeated


def test_monitoring_config_matches_tf_serving() -> None:
    monitoring = monitoring_config_pb2.MonitoringConfig.DESCRIPTOR
    prometheus = monitoring_config_pb2.PrometheusConfig.DESCRIPTOR
    assert monitoring.full_name == "tensorflow.serving.MonitoringConfig"
    assert fields(monitoring) == {"prometheus_config": (1, WRAPPER, "tensorflow.serving.PrometheusConfig")}
    assert fields(prometheus) == {
        "enable": (1, FieldDescriptor.TYPE_BOOL, ""),
        "path": (2, FieldDescriptor.TYPE_STRING, ""),
    }


def test_ssl_config_matches_tf_serving() -> None:
    descriptor = ssl_config_pb2.SSLConfig.DESCRIPTOR
    assert descriptor.full_name == "tensorflow.serving.SSLConfig"
    assert fields(descriptor) == {
        "server_key": (1, FieldDescriptor.TYPE_STRING, ""),
        "server_cert": (2, FieldDescriptor.TYPE_STRING, ""),
        "custom_ca": (3, FieldDescriptor.TYPE_STRING, ""),
        "client_verify": (4, FieldDescriptor.TYPE_BOOL, ""),
    }


def test_shared_batching_config_parses(testdata: Path) -> None:
    text = (testdata / "batching_config.txt").read_text()
    params = text_format.Parse(text, session_bundle_config_pb2.BatchingParameters())
    assert params.max_batch_size.value == 128
    assert params.HasField("batch_timeout_micros")
    assert params.batch_timeout_micros.value == 0
    assert params.max_enqueued_batches.value == 1000000
    assert params.num_batch_threads.value == 8
    # Wrapper fields tell "absent" from zero: TF Serving then uses its default.
    assert not params.HasField("thread_pool_name")
    assert not params.HasField("enable_large_batch_splitting")
    assert list(params.allowed_batch_sizes) == []


def test_shared_monitoring_config_parses(testdata: Path) -> None:
    text = (testdata / "monitoring_config.txt").read_text()
    config = text_format.Parse(text, monitoring_config_pb2.MonitoringConfig())
    assert config.prometheus_config.enable is True
    assert config.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_every_batching_field_parses_from_text() -> None:
    text = """
        max_batch_size { value: 32 }
        batch_timeout_micros { value: 5000 }
        max_enqueued_batches { value: 100 }
        num_batch_threads { value: 4 }
        thread_pool_name { value: "batch_threads" }
        allowed_batch_sizes: [8, 16, 32]
        pad_variable_length_inputs: true
        enable_large_batch_splitting { value: true }
        max_execution_batch_size { value: 16 }
    """
    params = text_format.Parse(text, session_bundle_config_pb2.BatchingParameters())
    assert params.thread_pool_name.value == "batch_threads"
    assert list(params.allowed_batch_sizes) == [8, 16, 32]
    assert params.pad_variable_length_inputs is True
    assert params.enable_large_batch_splitting.value is True
    assert params.max_execution_batch_size.value == 16


def test_ssl_config_round_trips_on_the_wire() -> None:
    config = text_format.Parse('server_key: "KEY" server_cert: "CERT" client_verify: true', ssl_config_pb2.SSLConfig())
    # Field 1 (server_key), length-delimited: tag 0x0A.
    assert config.SerializeToString().startswith(b"\x0a\x03KEY")
    assert ssl_config_pb2.SSLConfig.FromString(config.SerializeToString()) == config


def test_unknown_field_is_a_parse_error() -> None:
    with pytest.raises(text_format.ParseError, match="no_such_field"):
        text_format.Parse("no_such_field: 1", session_bundle_config_pb2.BatchingParameters())


def test_no_clash_with_the_tensorflow_serving_wheel() -> None:
    import tensorflow_serving.apis
    import tensorflow_serving.config

    for package in (tensorflow_serving.apis, tensorflow_serving.config):
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{module.name}")
    pool = descriptor_pool.Default()
    ours = {
        "tensorflow.serving.BatchingParameters": "tfserve_lab/protos/session_bundle_config.proto",
        "tensorflow.serving.MonitoringConfig": "tfserve_lab/protos/monitoring_config.proto",
        "tensorflow.serving.PrometheusConfig": "tfserve_lab/protos/monitoring_config.proto",
        "tensorflow.serving.SSLConfig": "tfserve_lab/protos/ssl_config.proto",
    }
    for name, file in ours.items():
        assert pool.FindMessageTypeByName(name).file.name == file
    # The wheel's own messages still resolve beside ours.
    assert pool.FindMessageTypeByName("tensorflow.serving.ModelServerConfig")
    assert pool.FindMessageTypeByName("tensorflow.serving.PredictRequest")
