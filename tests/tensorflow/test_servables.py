"""Real SavedModels and TF Lite models of TF Serving's testdata, loaded and run as TF Serving runs them."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, predict_pb2, prediction_log_pb2

from tfserve_lab.config import read_session_config
from tfserve_lab.core.servables.checks import coerce
from tfserve_lab.core.servables.loader import LoadOptions, load_version
from tfserve_lab.core.servables.saved_model import SavedModelServable, load_saved_model
from tfserve_lab.core.servables.tf_setup import SessionOptions, configure_tensorflow, session_config_proto
from tfserve_lab.core.servables.tflite import TfLiteServable, load_tflite_model
from tfserve_lab.core.types import SignatureInfo
from tfserve_lab.errors import ErrorCode, TfServeError

HALF_PLUS_TWO = "saved_model_half_plus_two_cpu/00000123"
HALF_PLUS_TWO_TF2 = "saved_model_half_plus_two_tf2_cpu/00000123"
COUNTER = "saved_model_counter/00000123"
X = np.array([[1.0], [2.0], [5.0]], np.float32)


@pytest.fixture(scope="module")
def load(testdata: Path) -> Iterator[Callable[..., Any]]:
    """Load a testdata version once per module (keyed by path and options); closed at the end."""
    cache: dict[tuple[str, str], Any] = {}

    def get(relative: str, runner: str = "auto") -> Any:
        key = (relative, runner)
        if key not in cache:
            path = str(testdata / relative)
            cache[key] = load_tflite_model(path) if runner == "tflite" else load_saved_model(path, runner=runner)
        return cache[key]

    yield get
    for servable in cache.values():
        servable.close()


def example(**features: float | bytes) -> bytes:
    """A serialized tf.Example with one float or bytes value per feature."""
    feature = {
        key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        if isinstance(value, bytes)
        else tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        for key, value in features.items()
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def metadata_json(signatures: dict[str, SignatureInfo]) -> dict[str, Any]:
    """Signatures in the JSON shape of TF Serving's metadata endpoint (without defaults)."""

    def tensor(info: Any) -> dict[str, Any]:
        dims = [{"size": str(d.size), "name": d.name} for d in info.dims]
        return {
            "dtype": info.dtype,
            "tensor_shape": {"dim": dims, "unknown_rank": info.unknown_rank},
            "name": info.name,
        }

    return {
        key: {
            "inputs": {alias: tensor(t) for alias, t in sig.inputs.items()},
            "outputs": {alias: tensor(t) for alias, t in sig.outputs.items()},
            "method_name": sig.method_name,
        }
        for key, sig in signatures.items()
    }


def write_warmup(version: Path, logs: list[prediction_log_pb2.PredictionLog]) -> None:
    """Write assets.extra/tf_serving_warmup_requests as TF Serving's warmup docs show."""
    (version / "assets.extra").mkdir(exist_ok=True)
    with tf.io.TFRecordWriter(str(version / "assets.extra" / "tf_serving_warmup_requests")) as writer:
        for entry in logs:
            writer.write(entry.SerializeToString())


def predict_log(signature: str = "", **inputs: Any) -> prediction_log_pb2.PredictionLog:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "warmup"
    request.model_spec.signature_name = signature
    for alias, value in inputs.items():
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
    return prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))


# Metadata: exactly what TF Serving's metadata endpoint returns.


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        (HALF_PLUS_TWO, "half_plus_two_model_metadata.json"),
        ("saved_model_half_plus_two_2_versions/00000123", "saved_model_half_plus_two_2_versions_metadata.json"),
        (HALF_PLUS_TWO_TF2, "saved_model_half_plus_two_tf2_2_versions_metadata.json"),
    ],
)
def test_signatures_match_tf_serving_metadata(
    load: Callable[..., Any], testdata: Path, relative: str, expected: str
) -> None:
    want = json.loads((testdata / expected).read_text())["metadata"]["signature_def"]["signature_def"]
    for signature in want.values():
        signature.pop("defaults", None)
    assert metadata_json(load(relative).signatures) == want


# Predict on every SavedModel of the testdata, with the runner chosen per model.


def test_half_plus_two_tf1_runs_in_a_session(load: Callable[..., Any]) -> None:
    servable = load(HALF_PLUS_TWO)
    assert servable.runner == "session"
    np.testing.assert_allclose(servable.run("serving_default", {"x": X})["y"], [[2.5], [3.0], [4.5]])
    # TF Serving feeds by tensor name without checking the placeholder's [-1, 1] shape.
    np.testing.assert_allclose(servable.run("", {"x": np.array([1.0, 2.0, 5.0])})["y"], [2.5, 3.0, 4.5])


def test_half_plus_two_tf2_runs_its_functions(load: Callable[..., Any]) -> None:
    servable = load(HALF_PLUS_TWO_TF2)
    assert servable.runner == "function"
    assert "__saved_model_init_op" in servable.signatures
    # The signature was traced with x: [1]; TF Serving ignores that and so do we.
    np.testing.assert_allclose(servable.run("", {"x": [1.0, 2.0, 5.0]})["y"], [2.5, 3.0, 4.5])
    np.testing.assert_allclose(servable.run("", {"x": np.array([7.0], np.float32)})["y"], [5.5])


def test_plain_eager_calls_skip_the_wrapper_and_agree_with_it(load: Callable[..., Any]) -> None:
    servable = load(HALF_PLUS_TWO_TF2)
    runner = servable._runner
    assert set(runner._atomic) == {name for name, spec in runner._specs.items() if spec is not None}
    assert "serving_default" in runner._atomic
    x = np.array([1.0, 2.0, 5.0], np.float32)
    assert runner._plain_eager()
    direct = servable.run("", {"x": x})["y"]
    # A tape or a strategy on the calling thread takes the signature's own _call_flat, as TensorFlow would.
    with tf.GradientTape():
        assert not runner._plain_eager()
        taped = servable.run("", {"x": x})["y"]
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        assert not runner._plain_eager()
        scoped = servable.run("", {"x": x})["y"]
    np.testing.assert_allclose(direct, [2.5, 3.0, 4.5])
    np.testing.assert_array_equal(taped, direct)
    np.testing.assert_array_equal(scoped, direct)


def test_failed_function_load_falls_back_to_a_session(testdata: Path) -> None:
    # tf.saved_model.load cannot wrap this TF1 graph ("Shapes must be equal rank"); TF Serving's session can.
    servable = load_saved_model(str(testdata / "saved_model_half_plus_three/00000123"), runner="function")
    assert servable.runner == "session"
    np.testing.assert_allclose(servable.run("", {"x": X})["y"], [[3.5], [4.0], [5.5]])
    servable.close()


def test_tf2_model_can_be_forced_into_a_session(load: Callable[..., Any]) -> None:
    servable = load(HALF_PLUS_TWO_TF2, "session")
    assert servable.runner == "session"
    np.testing.assert_allclose(servable.run("", {"x": [1.0, 2.0, 5.0]})["y"], [2.5, 3.0, 4.5])


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("saved_model_half_plus_three/00000123", [[3.5], [4.0], [5.5]]),
        ("saved_model_half_plus_two_2_versions/00000123", [[2.5], [3.0], [4.5]]),
        ("saved_model_half_plus_two_2_versions/00000124", [[2.5], [3.0], [4.5]]),
        ("saved_model_half_plus_two_cpu_with_saved_model_config/00000123", [[2.5], [3.0], [4.5]]),
        ("saved_model_half_plus_two_cpu_with_empty_saved_model_config/00000123", [[2.5], [3.0], [4.5]]),
        ("saved_model_half_plus_two_mlmd/00000123", [[2.5], [3.0], [4.5]]),
        ("saved_model_half_plus_two_mkl/00000123", [[2.5], [3.0], [4.5]]),
        ("saved_model_half_plus_two_gpu/00000123", [[2.5], [3.0], [4.5]]),
    ],
)
def test_tf1_models_predict(load: Callable[..., Any], relative: str, expected: list[list[float]]) -> None:
    servable = load(relative)
    assert servable.runner == "session"
    np.testing.assert_allclose(servable.run("serving_default", {"x": X})["y"], expected)


def test_matrix_half_plus_two(load: Callable[..., Any]) -> None:
    servable = load("matrix_half_plus_two/1")
    x_info = servable.signatures["serving_default"].inputs["x"]
    assert (x_info.name, x_info.dtype, x_info.shape) == ("x:0", "DT_FLOAT", (-1, 3, 3))
    x = np.arange(18, dtype=np.float32).reshape(2, 3, 3)
    np.testing.assert_allclose(servable.run("serving_default", {"x": x})["y"], x / 2 + 2)


def test_counter_is_stateful(load: Callable[..., Any]) -> None:
    servable = load(COUNTER)
    assert sorted(servable.signatures) == ["get_counter", "incr_counter", "incr_counter_by", "reset_counter"]
    assert servable.signatures["incr_counter"].outputs["output"].dtype == "DT_FLOAT_REF"
    assert servable.run("reset_counter", {})["output"] == 0
    assert servable.run("incr_counter", {})["output"] == 1
    assert servable.run("incr_counter", {})["output"] == 2
    assert servable.run("incr_counter_by", {"delta": 3})["output"] == 5
    assert servable.run("get_counter", {})["output"] == 5
    assert servable.run("reset_counter", {})["output"] == 0


@pytest.mark.parametrize("relative", [HALF_PLUS_TWO, HALF_PLUS_TWO_TF2])
def test_classify_and_regress_take_serialized_examples(load: Callable[..., Any], relative: str) -> None:
    servable = load(relative)
    examples = np.array([example(x=1.0, x2=1.0), example(x=4.0, x2=4.0)], dtype=object)
    np.testing.assert_allclose(servable.run("classify_x_to_y", {"inputs": examples})["scores"], [[2.5], [4.0]])
    np.testing.assert_allclose(servable.run("regress_x_to_y", {"inputs": examples})["outputs"], [[2.5], [4.0]])
    np.testing.assert_allclose(servable.run("regress_x_to_y2", {"inputs": examples})["outputs"], [[3.5], [5.0]])


def test_output_filter(load: Callable[..., Any]) -> None:
    servable = load("saved_model_half_plus_two_2_versions/00000123")
    assert list(servable.run("serving_default", {"x": X}, ["y"])) == ["y"]


# Errors, in TF Serving's words.


@pytest.mark.parametrize("runner", ["auto", "session"])
def test_request_errors(load: Callable[..., Any], runner: str) -> None:
    servable = load(HALF_PLUS_TWO_TF2 if runner == "auto" else HALF_PLUS_TWO, runner)
    cases: list[tuple[Callable[[], Any], ErrorCode, str]] = [
        (
            lambda: servable.run("nope", {"x": X}),
            ErrorCode.FAILED_PRECONDITION,
            'Serving signature key "nope" not found.',
        ),
        (
            lambda: servable.run("", {"x": X, "z": X}),
            ErrorCode.INVALID_ARGUMENT,
            "input size does not match signature: 2!=1 len({x,z}) != len({x}). Sent extra: {z}. Missing but required: {}.",
        ),
        (
            lambda: servable.run("", {"x": X}, ["q"]),
            ErrorCode.INVALID_ARGUMENT,
            "output tensor alias not found in signature: q Outputs expected to be in the set {y}.",
        ),
        (
            lambda: servable.run("", {"x": X}, ["y", "y"]),
            ErrorCode.INVALID_ARGUMENT,
            "duplicate output tensor alias: y",
        ),
        (
            lambda: servable.run("classify_x_to_y", {"inputs": np.array([b"garbage"], dtype=object)}),
            ErrorCode.INVALID_ARGUMENT,
            "Could not parse example input, value: 'garbage'",
        ),
    ]
    for call, code, message in cases:
        with pytest.raises(TfServeError) as caught:
            call()
        assert (caught.value.code, caught.value.message) == (code, message)


def test_unknown_alias_is_reported_as_missing_input(load: Callable[..., Any]) -> None:
    with pytest.raises(
        TfServeError, match=r"^Signature input alias: x\(feed name: x:0\) not found in request"
    ) as caught:
        load(HALF_PLUS_TWO).run("", {"z": X})
    assert caught.value.code == ErrorCode.INVALID_ARGUMENT


def test_tensorflow_errors_keep_their_code_and_first_line(load: Callable[..., Any]) -> None:
    with pytest.raises(TfServeError) as caught:
        load(HALF_PLUS_TWO).run("", {"x": np.array([b"a"], dtype=object)})
    assert (caught.value.code, caught.value.message) == (
        ErrorCode.INVALID_ARGUMENT,
        "Type mismatch: actual string vs. expect float",
    )


def test_coerce_casts_only_safe_conversions() -> None:
    assert coerce([1.5, 2.0], "DT_FLOAT").dtype == np.float32
    assert coerce([1, 2], "DT_INT32").dtype == np.int32
    assert coerce([2**40], "DT_INT32").dtype == np.int64  # out of range: left for TensorFlow to refuse
    assert coerce([1.5], "DT_INT64").dtype == np.float64
    assert coerce(["é"], "DT_STRING").tolist() == ["é".encode()]
    assert coerce(np.array([b"a"]), "DT_STRING").dtype == object


# Loading: version folders, tags, TF Lite preference.


def test_missing_or_half_written_version_raises(tmp_path: Path) -> None:
    with pytest.raises(TfServeError) as caught:
        load_version(str(tmp_path))
    assert caught.value.code == ErrorCode.NOT_FOUND
    assert caught.value.message.startswith(
        f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {tmp_path}."
    )
    (tmp_path / "saved_model.pb").write_bytes(b"\x0a\xff\xff")
    with pytest.raises(TfServeError) as caught:
        load_version(str(tmp_path))
    assert caught.value.code == ErrorCode.DATA_LOSS


def test_missing_variables_fail_the_load(copy_model: Callable[..., Path]) -> None:
    version = copy_model("saved_model_half_plus_two_cpu") / "00000123"
    shutil.rmtree(version / "variables")
    with pytest.raises(TfServeError):
        load_version(str(version))


def test_tags_must_match_a_meta_graph(testdata: Path) -> None:
    with pytest.raises(TfServeError) as caught:
        load_saved_model(str(testdata / HALF_PLUS_TWO), tags=("serve", "gpu"))
    assert caught.value.code == ErrorCode.NOT_FOUND
    assert caught.value.message.startswith("Could not find meta graph def matching supplied tags: { serve gpu }.")


def test_prefer_tflite_picks_model_tflite(copy_model: Callable[..., Path], testdata: Path) -> None:
    version = copy_model("saved_model_half_plus_two_cpu") / "00000123"
    shutil.copyfile(testdata / "saved_model_half_plus_two_tflite/00000123/model.tflite", version / "model.tflite")
    tflite = load_version(str(version), LoadOptions(prefer_tflite=True))
    saved_model = load_version(str(version), LoadOptions(prefer_tflite=False))
    assert isinstance(tflite, TfLiteServable)
    assert isinstance(saved_model, SavedModelServable)
    assert saved_model.runner == "session"
    for servable in (tflite, saved_model):
        np.testing.assert_allclose(servable.run("", {"x": X})["y"], [[2.5], [3.0], [4.5]])
        servable.close()


def test_prefer_tflite_without_model_tflite_loads_the_saved_model(testdata: Path) -> None:
    servable = load_version(str(testdata / HALF_PLUS_TWO), LoadOptions(prefer_tflite=True, warmup=False))
    assert isinstance(servable, SavedModelServable)
    servable.close()


def test_configure_tensorflow_is_safe_to_call_twice() -> None:
    configure_tensorflow(SessionOptions())
    assert configure_tensorflow(SessionOptions(intra_op_parallelism=2)) is False


# TF Lite.


def test_tflite_without_sigdef_gets_tf_servings_generated_signature(load: Callable[..., Any]) -> None:
    servable = load("saved_model_half_plus_two_tflite/00000123", "tflite")
    assert metadata_json(servable.signatures) == {
        "serving_default": {
            "inputs": {
                "x": {
                    "dtype": "DT_FLOAT",
                    "tensor_shape": {"dim": [{"size": "1", "name": ""}] * 2, "unknown_rank": False},
                    "name": "x",
                }
            },
            "outputs": {
                "y": {
                    "dtype": "DT_FLOAT",
                    "tensor_shape": {"dim": [{"size": "1", "name": ""}] * 2, "unknown_rank": False},
                    "name": "y",
                }
            },
            "method_name": "tensorflow/serving/predict",
        }
    }
    np.testing.assert_allclose(servable.run("", {"x": X})["y"], [[2.5], [3.0], [4.5]])
    np.testing.assert_allclose(servable.run("", {"x": [[7.0]]})["y"], [[5.5]])  # resized back to batch 1


def test_tflite_with_sigdef_uses_its_aliases(load: Callable[..., Any]) -> None:
    servable = load("saved_model_half_plus_two_tflite_with_sigdef/00000123", "tflite")
    signature = servable.signatures["serving_default"]
    assert (signature.inputs["x"].name, signature.outputs["y"].name) == ("tflite_input", "y")
    np.testing.assert_allclose(servable.run("serving_default", {"x": X})["y"], [[2.5], [3.0], [4.5]])
    with pytest.raises(TfServeError, match=r"^Signature input alias: x"):
        servable.run("", {"tflite_input": X})


def test_tflite_parse_example(load: Callable[..., Any]) -> None:
    servable = load("parse_example_tflite/00000123", "tflite")
    signature = servable.signatures["serving_default"]
    assert signature.inputs["input"].dtype == "DT_STRING"
    outputs = servable.run("", {"input": np.array([example(x=3.0, y=b"hi"), example()], dtype=object)})
    np.testing.assert_allclose(outputs["ParseExample/ParseExampleV2"], [[3.0], [0.0]])
    assert outputs["ParseExample/ParseExampleV2:1"].tolist() == [[b"hi"], [b"missing"]]


def test_concurrent_runs(load: Callable[..., Any]) -> None:
    servables = [
        load(HALF_PLUS_TWO),
        load(HALF_PLUS_TWO_TF2),
        load("saved_model_half_plus_two_tflite/00000123", "tflite"),
    ]
    failures: list[BaseException] = []

    def hammer(seed: int) -> None:
        try:
            for i in range(40):
                x = np.full((1 + (seed + i) % 5, 1), float(seed), np.float32)
                for servable in servables:
                    np.testing.assert_allclose(servable.run("", {"x": x})["y"], x / 2 + 2)
        except (AssertionError, TfServeError) as exc:  # reported on the test thread
            failures.append(exc)

    threads = [threading.Thread(target=hammer, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures


# Warmup (saved_model_warmup.md): replayed before the version serves.


def test_warmup_replays_predict_logs(copy_model: Callable[..., Path]) -> None:
    version = copy_model("saved_model_counter") / "00000123"
    write_warmup(version, [predict_log("incr_counter")] * 3)
    servable = load_saved_model(str(version))
    assert servable.warmup_records == 3
    assert servable.run("get_counter", {})["output"] == 3
    servable.close()
    twice = load_saved_model(str(version), num_request_iterations_for_warmup=2)
    assert (twice.warmup_records, twice.run("get_counter", {})["output"]) == (3, 6)
    twice.close()
    skipped = load_saved_model(str(version), warmup=False)
    assert (skipped.warmup_records, skipped.run("get_counter", {})["output"]) == (0, 0)
    skipped.close()


def test_warmup_with_tensor_protos_and_examples(copy_model: Callable[..., Path]) -> None:
    version = copy_model("saved_model_half_plus_two_cpu") / "00000123"
    request = classification_pb2.ClassificationRequest()
    request.model_spec.signature_name = "classify_x_to_y"
    request.input.example_list.examples.add().features.feature["x"].float_list.value.append(1.0)
    classify = prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog(request=request))
    write_warmup(version, [predict_log(x=np.array([[1.0]], np.float32)), classify])
    servable = load_version(str(version))
    assert servable.warmup_records == 2
    assert servable.warmup_latency_s > 0
    servable.close()


def test_corrupt_warmup_file_fails_the_load(copy_model: Callable[..., Path]) -> None:
    version = copy_model("saved_model_half_plus_two_cpu") / "00000123"
    (version / "assets.extra").mkdir()
    (version / "assets.extra" / "tf_serving_warmup_requests").write_bytes(b"this is not a TFRecord file at all")
    with pytest.raises(TfServeError) as caught:
        load_version(str(version))
    assert caught.value.code == ErrorCode.DATA_LOSS
    assert caught.value.message.endswith(". Please verify your warmup data is in TFRecord format.")


def test_failing_warmup_request_fails_the_load(copy_model: Callable[..., Path]) -> None:
    version = copy_model("saved_model_half_plus_two_cpu") / "00000123"
    write_warmup(version, [predict_log("no_such_signature", x=np.array([[1.0]], np.float32))])
    with pytest.raises(TfServeError) as caught:
        load_version(str(version))
    assert (caught.value.code, caught.value.message) == (
        ErrorCode.FAILED_PRECONDITION,
        'Serving signature key "no_such_signature" not found.',
    )


def test_session_config_file_is_the_base_and_the_flags_overwrite_threads_and_gpu_fraction(tmp_path: Path) -> None:
    file = tmp_path / "session.config"
    file.write_text(
        "intra_op_parallelism_threads: 7\ninter_op_parallelism_threads: 7\nallow_soft_placement: false\n"
        "graph_options { optimizer_options { opt_level: L0 } }\ngpu_options { per_process_gpu_memory_fraction: 0.9 }\n"
    )
    options = SessionOptions(intra_op_parallelism=2, config_proto=read_session_config(str(file)))
    config = session_config_proto(options)
    # server.cc: the file is parsed, then the three flag-backed fields are set from the flags, defaults included.
    assert (config.intra_op_parallelism_threads, config.inter_op_parallelism_threads) == (2, 0)
    assert config.gpu_options.per_process_gpu_memory_fraction == 0.0
    assert not config.allow_soft_placement
    assert config.graph_options.optimizer_options.opt_level == -1  # L0
    without_file = session_config_proto(SessionOptions(inter_op_parallelism=3))
    assert (without_file.allow_soft_placement, without_file.inter_op_parallelism_threads) == (True, 3)
