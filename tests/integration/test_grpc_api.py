"""TF Serving's gRPC API through the official stubs, against a real server process."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pytest
import tensorflow as tf
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tests.integration.server_process import ServerProcess


@pytest.fixture(scope="module")
def channel(server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as chan:
        yield chan


@pytest.fixture(scope="module")
def predictions(channel: grpc.Channel) -> prediction_service_pb2_grpc.PredictionServiceStub:
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def example(**features: float) -> tf.train.Example:
    return tf.train.Example(
        features=tf.train.Features(
            feature={k: tf.train.Feature(float_list=tf.train.FloatList(value=[v])) for k, v in features.items()}
        )
    )


def test_tutorial_predict_call(predictions: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    # The TF Serving tutorial's client code, unchanged.
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half_plus_two"
    request.model_spec.signature_name = "serving_default"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([[1.0], [2.0], [5.0]], dtype=np.float32)))
    response = predictions.Predict(request, timeout=10.0)
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["y"]), [[2.5], [3.0], [4.5]])
    assert response.model_spec.name == "half_plus_two"
    assert response.model_spec.version.value == 123
    assert response.model_spec.signature_name == "serving_default"


def test_predict_versions_labels_and_output_filter(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "two"
    request.model_spec.version_label = "canary"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([1.0, 2.0], shape=[2, 1]))
    request.output_filter.append("y")
    response = predictions.Predict(request, timeout=10.0)
    assert response.model_spec.version.value == 124
    assert response.model_spec.signature_name == "serving_default"
    request.model_spec.version.value = 123
    assert predictions.Predict(request, timeout=10.0).model_spec.version.value == 123


def test_tf2_model_and_half_plus_three(predictions: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    for name, expected in (("tf2", [2.5, 3.0]), ("half_plus_three", [3.5, 4.0])):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = name
        request.inputs["x"].CopyFrom(tf.make_tensor_proto([1.0, 2.0], dtype=tf.float32))
        response = predictions.Predict(request, timeout=10.0)
        np.testing.assert_allclose(tf.make_ndarray(response.outputs["y"]), expected)


def test_classify_regress_multi_inference(predictions: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name = "half_plus_two"
    classify.model_spec.signature_name = "classify_x_to_y"
    classify.input.example_list.examples.extend([example(x=1.0), example(x=2.0)])
    result = predictions.Classify(classify, timeout=10.0)
    assert [[(c.label, c.score) for c in row.classes] for row in result.result.classifications] == [
        [("", 2.5)],
        [("", 3.0)],
    ]
    assert result.model_spec.signature_name == "classify_x_to_y"

    regress = regression_pb2.RegressionRequest()
    regress.model_spec.name = "half_plus_two"
    regress.model_spec.signature_name = "regress_x_to_y"
    regress.input.example_list_with_context.context.CopyFrom(example(x=4.0))
    regress.input.example_list_with_context.examples.extend([example(), example(x=2.0)])
    assert [r.value for r in predictions.Regress(regress, timeout=10.0).result.regressions] == [4.0, 3.0]

    multi = inference_pb2.MultiInferenceRequest()
    for signature, method in (
        ("classify_x_to_y", "tensorflow/serving/classify"),
        ("regress_x_to_y2", "tensorflow/serving/regress"),
    ):
        task = multi.tasks.add()
        task.model_spec.name = "half_plus_two"
        task.model_spec.signature_name = signature
        task.method_name = method
    multi.input.example_list.examples.extend([example(x=2.0)])
    results = predictions.MultiInference(multi, timeout=10.0).results
    assert results[0].classification_result.classifications[0].classes[0].score == 3.0
    assert results[1].regression_result.regressions[0].value == 4.0  # y2 = 0.5x + 3


def test_metadata_and_status(
    channel: grpc.Channel, predictions: prediction_service_pb2_grpc.PredictionServiceStub
) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "half_plus_two"
    request.metadata_field.append("signature_def")
    response = predictions.GetModelMetadata(request, timeout=10.0)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    assert response.model_spec.version.value == 123
    serving = signatures.signature_def["serving_default"]
    assert serving.method_name == "tensorflow/serving/predict"
    assert serving.inputs["x"].name == "x:0"
    assert [d.size for d in serving.inputs["x"].tensor_shape.dim] == [-1, 1]
    assert set(signatures.signature_def) == {
        "serving_default",
        "classify_x_to_y",
        "regress_x_to_y",
        "regress_x_to_y2",
        "regress_x2_to_y3",
    }

    models = model_service_pb2_grpc.ModelServiceStub(channel)
    status = get_model_status_pb2.GetModelStatusRequest()
    status.model_spec.name = "two"
    rows = models.GetModelStatus(status, timeout=10.0).model_version_status
    assert [(r.version, r.state, r.status.error_code) for r in rows] == [(124, 30, 0), (123, 30, 0)]


def test_unix_socket_serves(server: ServerProcess) -> None:
    with grpc.insecure_channel(f"unix:{server.socket_path}") as chan:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(chan)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "half_plus_two"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto([1.0], dtype=tf.float32))
        np.testing.assert_allclose(tf.make_ndarray(stub.Predict(request, timeout=10.0).outputs["y"]), [2.5])


def test_health_and_reflection(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    assert (
        health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
        == health_pb2.HealthCheckResponse.SERVING
    )
    assert (
        health.Check(health_pb2.HealthCheckRequest(service="half_plus_two"), timeout=5).status
        == health_pb2.HealthCheckResponse.SERVING
    )
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"tensorflow.serving.PredictionService", "tensorflow.serving.ModelService", "grpc.health.v1.Health"} <= names


def _predict(name: str, **kwargs: object) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    for key, value in kwargs.items():
        if key == "version":
            request.model_spec.version.value = value  # type: ignore[assignment]
        elif key == "label":
            request.model_spec.version_label = value  # type: ignore[assignment]
        elif key == "signature":
            request.model_spec.signature_name = value  # type: ignore[assignment]
        elif key == "filter":
            request.output_filter.append(value)  # type: ignore[arg-type]
    if "no_input" not in kwargs:
        request.inputs[str(kwargs.get("alias", "x"))].CopyFrom(tf.make_tensor_proto([1.0], dtype=tf.float32))
    return request


@pytest.mark.parametrize(
    ("request_proto", "code", "needle"),
    [
        (_predict("nope"), grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)"),
        (_predict("two", version=7), grpc.StatusCode.NOT_FOUND, "Servable not found for request: Specific(two, 7)"),
        (_predict("two", label="gold"), grpc.StatusCode.INVALID_ARGUMENT, "Unrecognized servable version label: gold"),
        (
            _predict("half_plus_two", signature="nope"),
            grpc.StatusCode.FAILED_PRECONDITION,
            'Serving signature key "nope" not found.',
        ),
        (
            _predict("half_plus_two", alias="z"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Signature input alias: x(feed name: x:0) not found in request",
        ),
        (
            _predict("half_plus_two", filter="nope"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "output tensor alias not found in signature: nope",
        ),
        (_predict(""), grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified."),
    ],
)
def test_predict_errors(
    predictions: prediction_service_pb2_grpc.PredictionServiceStub,
    request_proto: predict_pb2.PredictRequest,
    code: grpc.StatusCode,
    needle: str,
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        predictions.Predict(request_proto, timeout=10.0)
    assert info.value.code() == code
    assert needle in info.value.details()


def test_metadata_and_status_errors(
    channel: grpc.Channel, predictions: prediction_service_pb2_grpc.PredictionServiceStub
) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "half_plus_two"
    request.metadata_field.append("foo")
    with pytest.raises(grpc.RpcError) as info:
        predictions.GetModelMetadata(request, timeout=10.0)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # get_model_metadata_impl.cc passes a printf pattern to StrCat: TF Serving's message keeps the "%s".
    assert info.value.details() == "Metadata field %s is not supportedfoo"
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    status = get_model_status_pb2.GetModelStatusRequest()
    status.model_spec.name = "two"
    status.model_spec.version.value = 5
    with pytest.raises(grpc.RpcError) as info:
        models.GetModelStatus(status, timeout=10.0)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details() == "Could not find version 5 of model two"
