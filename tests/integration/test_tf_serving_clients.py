"""gRPC responses read the way TF Serving's own clients read them, with both response serializations.

TF Serving writes Predict outputs into the typed ``*_val`` fields (``Tensor::AsProtoField``) unless
``--enable_serialization_as_tensor_content``; its example client reads ``outputs['scores'].float_val``
and its integration tests ``len(outputs['y'].float_val)``. Both servers here serve TF1, native TF2,
Keras 3, TF Lite and an every-dtype model made in the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tests.integration.server_process import ServerProcess

# What the every-dtype model returns for x = [1, 2, 3], and the typed field AsProtoField writes it in.
DTYPES: dict[str, tuple[tf.DType, str]] = {
    "float": (tf.float32, "float_val"),
    "double": (tf.float64, "double_val"),
    "half": (tf.float16, "half_val"),
    "bfloat16": (tf.bfloat16, "half_val"),
    "int8": (tf.int8, "int_val"),
    "int16": (tf.int16, "int_val"),
    "int32": (tf.int32, "int_val"),
    "uint8": (tf.uint8, "int_val"),
    "uint16": (tf.uint16, "int_val"),
    "int64": (tf.int64, "int64_val"),
    "uint32": (tf.uint32, "uint32_val"),
    "uint64": (tf.uint64, "uint64_val"),
    "bool": (tf.bool, "bool_val"),
    "complex64": (tf.complex64, "scomplex_val"),
    "complex128": (tf.complex128, "dcomplex_val"),
    "string": (tf.string, "string_val"),
}
X = np.array([1.0, 2.0, 3.0], dtype=np.float32)


def expected_output(name: str) -> np.ndarray:
    dtype, _ = DTYPES[name]
    if dtype == tf.string:
        return np.array([b"1", b"2", b"3"], dtype=object)
    if dtype.is_complex:
        return (X + 1j * -X).astype(dtype.as_numpy_dtype)
    if dtype == tf.bool:
        return X > 1.5
    return X.astype(dtype.as_numpy_dtype)


def typed_values(name: str) -> list[object]:
    """The typed field's contents as AsProtoField writes them: bit patterns for half and bfloat16, (re, im) pairs."""
    array = expected_output(name)
    if array.dtype in (np.float16, np.dtype(ml_dtypes.bfloat16)):
        return array.view(np.uint16).tolist()
    if array.dtype.kind == "c":
        return array.view(array.real.dtype).tolist()
    return array.tolist()


class EveryDtype(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = {}
        for name, (dtype, _) in DTYPES.items():
            if dtype == tf.string:
                outputs[name] = tf.strings.as_string(x, precision=0)
            elif dtype.is_complex:
                outputs[name] = tf.complex(tf.cast(x, dtype.real_dtype), tf.cast(-x, dtype.real_dtype))
            elif dtype == tf.bool:
                outputs[name] = x > 1.5
            else:
                outputs[name] = tf.cast(x, dtype)
        return outputs


@pytest.fixture(scope="module")
def repository(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model config over the testdata and two models exported here: every dtype, and a Keras 3 model."""
    root = tmp_path_factory.mktemp("clients")
    module = EveryDtype()
    tf.saved_model.save(module, str(root / "dtypes" / "1"), signatures={"serving_default": module.serve})
    import keras

    inputs = keras.Input((4,), name="features")
    keras_model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="scores")(inputs))
    keras_model.export(str(root / "keras" / "1"), verbose=False)
    np.save(root / "keras_expected.npy", keras_model.predict(np.ones((2, 4), np.float32), verbose=0))
    models = {
        "half_plus_two": testdata / "saved_model_half_plus_two_cpu",
        "tf2": testdata / "saved_model_half_plus_two_tf2_cpu",
        "tflite": testdata / "saved_model_half_plus_two_tflite",
        "dtypes": root / "dtypes",
        "keras": root / "keras",
    }
    entries = "".join(
        f'config {{ name: "{n}" base_path: "{p}" model_platform: "tensorflow" }}\n' for n, p in models.items()
    )
    (root / "models.config").write_text("model_config_list {\n" + entries + "}\n")
    return root


def start(repository: Path, name: str, *flags: str) -> ServerProcess:
    socket = repository / f"{name}.sock"
    proc = ServerProcess(
        [
            f"--model_config_file={repository / 'models.config'}",
            f"--grpc_socket_path={socket}",
            "--prefer_tflite_model",
            *flags,
        ],
        log_path=repository / f"{name}.log",
    )
    proc.socket_path = socket
    try:
        for model in ("half_plus_two", "tf2", "tflite", "dtypes", "keras"):
            proc.wait_ready(model)
    except BaseException:
        proc.stop()
        raise
    return proc


@pytest.fixture(scope="module")
def default_server(repository: Path) -> Iterator[ServerProcess]:
    proc = start(repository, "default")
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def flagged_server(repository: Path) -> Iterator[ServerProcess]:
    proc = start(
        repository, "flagged", "--enable_serialization_as_tensor_content", "--enable_signature_method_name_check"
    )
    yield proc
    proc.stop()


def stub_for(address: str) -> Iterator[prediction_service_pb2_grpc.PredictionServiceStub]:
    with grpc.insecure_channel(address) as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="module", params=["tcp", "unix"])
def stub(request: pytest.FixtureRequest, default_server: ServerProcess) -> Iterator[object]:
    address = (
        f"127.0.0.1:{default_server.grpc_port}" if request.param == "tcp" else f"unix:{default_server.socket_path}"
    )
    yield from stub_for(address)


@pytest.fixture(scope="module")
def flagged_stub(flagged_server: ServerProcess) -> Iterator[object]:
    yield from stub_for(f"127.0.0.1:{flagged_server.grpc_port}")


def predict(stub: object, model: str, inputs: dict[str, tf.Tensor | np.ndarray]) -> predict_pb2.PredictResponse:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    for alias, value in inputs.items():
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
    return stub.Predict(request, timeout=20.0)  # type: ignore[attr-defined]


def value_fields(tensor: object) -> set[str]:
    return {f.name for f, _ in tensor.ListFields() if f.name.endswith("_val") or f.name == "tensor_content"}  # type: ignore[attr-defined]


# The integration tests' and example client's reading: the typed field, with tensor_content empty.


@pytest.mark.parametrize(
    ("model", "inputs", "expected"),
    [
        ("half_plus_two", {"x": np.array([[1.0], [2.0], [5.0]], np.float32)}, [2.5, 3.0, 4.5]),
        ("tf2", {"x": np.array([1.0, 2.0], np.float32)}, [2.5, 3.0]),
        ("tflite", {"x": np.array([[2.0]], np.float32)}, [3.0]),
    ],
)
def test_testdata_models_answer_in_float_val(
    stub: object, model: str, inputs: dict[str, np.ndarray], expected: list[float]
) -> None:
    response = predict(stub, model, inputs)
    assert len(response.outputs["y"].float_val) == len(expected)
    assert list(response.outputs["y"].float_val) == expected
    assert not response.outputs["y"].tensor_content
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["y"]).ravel(), expected)


@pytest.mark.parametrize("name", DTYPES)
def test_every_dtype_is_written_in_its_typed_field(stub: object, name: str) -> None:
    tensor = predict(stub, "dtypes", {"x": X}).outputs[name]
    field = DTYPES[name][1]
    assert value_fields(tensor) == {field}
    assert list(getattr(tensor, field)) == typed_values(name)
    assert tensor.dtype == DTYPES[name][0].as_datatype_enum
    assert [d.size for d in tensor.tensor_shape.dim] == [3]
    np.testing.assert_array_equal(tf.make_ndarray(tensor), expected_output(name))


@pytest.mark.parametrize("name", DTYPES)
def test_with_the_flag_every_dtype_is_packed_in_tensor_content(flagged_stub: object, name: str) -> None:
    tensor = predict(flagged_stub, "dtypes", {"x": X}).outputs[name]
    assert value_fields(tensor) == {"tensor_content"}
    # C++ Tensor::FromProto reads it back; tf.make_ndarray can, except for strings (np.frombuffer of objects).
    decoded = tf.io.parse_tensor(tensor.SerializeToString(), DTYPES[name][0]).numpy()
    np.testing.assert_array_equal(decoded, expected_output(name))
    if name != "string":
        np.testing.assert_array_equal(tf.make_ndarray(tensor), expected_output(name))


def test_with_the_flag_testdata_models_answer_in_tensor_content(flagged_stub: object) -> None:
    response = predict(flagged_stub, "half_plus_two", {"x": np.array([[2.0]], np.float32)})
    assert not response.outputs["y"].float_val
    assert tf.make_ndarray(response.outputs["y"]).tolist() == [[3.0]]


def test_keras_model_made_here(stub: object, repository: Path) -> None:
    response = predict(stub, "keras", {"features": np.ones((2, 4), np.float32)})
    (alias,) = response.outputs
    scores = np.array(response.outputs[alias].float_val).reshape(2, 3)
    np.testing.assert_allclose(scores, np.load(repository / "keras_expected.npy"), rtol=1e-6)


# Clients written the way users write them, run unchanged.


class TFServingClient:
    """A gRPC client as the widely copied tutorial writes it: one input, the output read from float_val."""

    def __init__(self, host: str, port: int, model_name: str, signature_name: str = "serving_default") -> None:
        self.channel = grpc.insecure_channel(f"{host}:{port}")
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.model_name = model_name
        self.signature_name = signature_name

    def predict(self, data: np.ndarray, input_name: str, output_name: str) -> np.ndarray:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        request.model_spec.signature_name = self.signature_name
        request.inputs[input_name].CopyFrom(tf.make_tensor_proto(data, shape=list(data.shape)))
        result = self.stub.Predict(request, 10.0)
        output = result.outputs[output_name]
        shape = [dim.size for dim in output.tensor_shape.dim]
        return np.array(output.float_val).reshape(shape)


def test_the_tutorials_client_works_unchanged(default_server: ServerProcess) -> None:
    client = TFServingClient("127.0.0.1", default_server.grpc_port, "half_plus_two")
    predictions = client.predict(np.array([[1.0], [2.0], [5.0]], np.float32), "x", "y")
    assert predictions.tolist() == [[2.5], [3.0], [4.5]]
    client.channel.close()


def test_a_client_written_like_mnist_client_works_unchanged(default_server: ServerProcess) -> None:
    # tensorflow_serving/example/mnist_client.py: response = numpy.array(result_future.result().outputs['scores'].float_val)
    channel = grpc.insecure_channel(f"localhost:{default_server.grpc_port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "keras"
    request.model_spec.signature_name = "serving_default"
    request.inputs["features"].CopyFrom(tf.make_tensor_proto(np.ones((1, 4), np.float32), shape=[1, 4]))
    result_future = stub.Predict.future(request, 5.0)
    (alias,) = result_future.result().outputs
    response = np.array(result_future.result().outputs[alias].float_val)
    prediction = np.argmax(response)
    assert response.shape == (3,)
    assert abs(response.sum() - 1.0) < 1e-5
    assert 0 <= prediction < 3
    channel.close()


# Classify, Regress and MultiInference on native TF2 signatures (all "tensorflow/serving/predict").


def example(x: float) -> tf.train.Example:
    return tf.train.Example(
        features=tf.train.Features(feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[x]))})
    )


def classify(stub: object) -> classification_pb2.ClassificationResponse:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "tf2"
    request.model_spec.signature_name = "classify_x_to_y"
    request.input.example_list.examples.append(example(2.0))
    return stub.Classify(request, timeout=20.0)  # type: ignore[attr-defined]


def regress(stub: object) -> regression_pb2.RegressionResponse:
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "tf2"
    request.model_spec.signature_name = "regress_x_to_y"
    request.input.example_list.examples.append(example(2.0))
    return stub.Regress(request, timeout=20.0)  # type: ignore[attr-defined]


def multi_inference(stub: object, *tasks: tuple[str, str]) -> inference_pb2.MultiInferenceResponse:
    request = inference_pb2.MultiInferenceRequest()
    for signature, method in tasks or (("classify_x_to_y", "tensorflow/serving/classify"),):
        task = request.tasks.add(method_name=method)
        task.model_spec.name = "tf2"
        task.model_spec.signature_name = signature
    request.input.example_list.examples.append(example(2.0))
    return stub.MultiInference(request, timeout=20.0)  # type: ignore[attr-defined]


def test_native_tf2_model_classifies_regresses_and_multi_infers_by_default(stub: object) -> None:
    classified = classify(stub)
    assert [(c.label, c.score) for c in classified.result.classifications[0].classes] == [("", 3.0)]
    assert (classified.model_spec.name, classified.model_spec.signature_name) == ("tf2", "classify_x_to_y")
    assert [r.value for r in regress(stub).result.regressions] == [3.0]
    classified_once = multi_inference(stub).results
    regressed_once = multi_inference(stub, ("regress_x_to_y", "tensorflow/serving/regress")).results
    assert classified_once[0].classification_result.classifications[0].classes[0].score == 3.0
    assert regressed_once[0].regression_result.regressions[0].value == 3.0
    assert [(r.model_spec.name, r.model_spec.signature_name, r.model_spec.version.value) for r in regressed_once] == [
        ("tf2", "regress_x_to_y", 123)
    ]


def test_multi_inference_refuses_tf2_signatures_with_different_input_tensors(stub: object) -> None:
    # Each TF2 signature has its own input placeholder (classify_x_to_y_inputs:0, regress_x_to_y_inputs:0), and
    # MultiInference feeds one tensor to every task: TF Serving refuses the pair with this message too.
    with pytest.raises(grpc.RpcError) as info:
        multi_inference(
            stub, ("classify_x_to_y", "tensorflow/serving/classify"), ("regress_x_to_y", "tensorflow/serving/regress")
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "Input tensor must be the same for all Signatures."


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            classify,
            "Expected classification signature method_name to be tensorflow/serving/classify. Was: tensorflow/serving/predict",
        ),
        (
            regress,
            "Expected regression signature method_name to be tensorflow/serving/regress. Was: tensorflow/serving/predict",
        ),
        (
            multi_inference,
            "Expected classification signature method_name to be tensorflow/serving/classify. Was: tensorflow/serving/predict",
        ),
    ],
)
def test_with_the_method_name_check_native_tf2_signatures_are_refused(
    flagged_stub: object, call: object, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        call(flagged_stub)  # type: ignore[operator]
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == message
