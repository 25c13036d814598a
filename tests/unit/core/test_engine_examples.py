"""Classify and regress through the engine: TF Serving's signature checks, with and without the method-name check."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest

from tfserve_lab.config import ModelConfig
from tfserve_lab.core.engine import Engine, EngineOptions
from tfserve_lab.core.requests import ArrayInputs, ExampleList
from tfserve_lab.core.servables.callable import CallableServable, tensor_info
from tfserve_lab.core.signature_text import signature_debug_string, tensor_shape_string
from tfserve_lab.core.types import ModelSpec, SignatureInfo
from tfserve_lab.core.watcher import WatcherOptions
from tfserve_lab.errors import ErrorCode, TfServeError

PREDICT = "tensorflow/serving/predict"
EXAMPLES = tensor_info("tf_example:0", "DT_STRING", (-1,))
Outputs = Callable[[int], Mapping[str, np.ndarray]]


def serve(tmp_path: Path, signatures: dict[str, tuple[SignatureInfo, Outputs]], *, check: bool = False) -> Engine:
    (tmp_path / "m" / "1").mkdir(parents=True)
    servable = CallableServable(
        {key: (info, lambda inputs, f=fn: f(len(inputs[next(iter(inputs))]))) for key, (info, fn) in signatures.items()}
    )
    options = EngineOptions(watcher=WatcherOptions(poll_wait_seconds=0), signature_method_name_check=check)
    engine = Engine(lambda path: servable, options)
    engine.load([ModelConfig("m", str(tmp_path / "m"))])
    return engine


def call(engine: Engine, method: str, signature: str, count: int = 2) -> object:
    run = engine.classify if method == "classify" else engine.regress
    return asyncio.run(run(ModelSpec("m"), ExampleList([b""] * count, signature)))


def scores(n: int) -> Mapping[str, np.ndarray]:
    return {"scores": np.full((n, 2), 0.25, np.float32)}


def test_a_predict_signature_that_fits_classifies_and_regresses_unless_the_check_is_on(tmp_path: Path) -> None:
    signatures: dict[str, tuple[SignatureInfo, Outputs]] = {
        "c": (SignatureInfo(PREDICT, {"inputs": EXAMPLES}, {"scores": tensor_info("s:0")}), scores),
        "r": (
            SignatureInfo(PREDICT, {"inputs": EXAMPLES}, {"outputs": tensor_info("o:0")}),
            lambda n: {"outputs": np.full((n, 1), 3.0, np.float32)},
        ),
    }
    engine = serve(tmp_path, signatures)
    assert call(engine, "classify", "c").scores.tolist() == [[0.25, 0.25]] * 2  # type: ignore[attr-defined]
    assert call(engine, "regress", "r").values.tolist() == [3.0, 3.0]  # type: ignore[attr-defined]
    engine.stop()
    checked = serve(tmp_path / "checked", signatures, check=True)
    for method, signature, kind in (("classify", "c", "classification"), ("regress", "r", "regression")):
        with pytest.raises(TfServeError) as info:
            call(checked, method, signature)
        expected = f"tensorflow/serving/{method}"
        assert info.value.message == f"Expected {kind} signature method_name to be {expected}. Was: {PREDICT}"
        assert info.value.code is ErrorCode.INVALID_ARGUMENT
    checked.stop()


def test_with_the_check_predict_refuses_other_method_names(tmp_path: Path) -> None:
    signature = SignatureInfo("custom/method", {"x": tensor_info("x:0")}, {"y": tensor_info("y:0")})
    engine = serve(
        tmp_path, {"serving_default": (signature, lambda n: {"y": np.zeros((n, 1), np.float32)})}, check=True
    )
    with pytest.raises(TfServeError) as info:
        asyncio.run(engine.predict(ModelSpec("m"), ArrayInputs({"x": np.zeros((1, 1), np.float32)})))
    assert info.value.code is ErrorCode.INTERNAL
    assert info.value.message == (
        "Expected prediction signature method_name to be one of {tensorflow/serving/predict, "
        "tensorflow/serving/classify, tensorflow/serving/regress}. Was: custom/method"
    )
    engine.stop()


X_INPUT = SignatureInfo(PREDICT, {"x": tensor_info("x:0")}, {"scores": tensor_info("s:0")})


@pytest.mark.parametrize(
    ("method", "signature", "outputs", "message"),
    [
        (
            "classify",
            X_INPUT,
            scores,
            f"No classification inputs found in SignatureDef: {signature_debug_string(X_INPUT)}",
        ),
        (
            "classify",
            SignatureInfo(PREDICT, {"inputs": EXAMPLES}, {"probabilities": tensor_info("p:0")}),
            scores,
            'Expected classification signature outputs to contain at least one of "classes" or "scores". Signature was: ',
        ),
        (
            "classify",
            SignatureInfo(PREDICT, {"inputs": EXAMPLES}, {"scores": tensor_info("s:0")}),
            lambda n: {"scores": np.zeros((n, 2), np.int64)},
            "Expected scores Tensor of DT_FLOAT. Got: DT_INT64",
        ),
        (
            "classify",
            SignatureInfo(PREDICT, {"inputs": EXAMPLES}, {"classes": tensor_info("c:0", "DT_STRING")}),
            lambda n: {"classes": np.array([b"a"] * n, dtype=object)},
            "Expected Tensor shape: [batch_size num_classes] but got [2]",
        ),
        (
            "classify",
            SignatureInfo(
                PREDICT,
                {"inputs": EXAMPLES},
                {"classes": tensor_info("c:0", "DT_STRING"), "scores": tensor_info("s:0")},
            ),
            lambda n: {"classes": np.full((n, 3), b"a", dtype=object), "scores": np.zeros((n, 2), np.float32)},
            "Tensors class and score should match in dim_size(1). Got 3 vs. 2",
        ),
        (
            "classify",
            SignatureInfo(PREDICT, {"inputs": EXAMPLES}, {"scores": tensor_info("s:0")}),
            lambda n: {"scores": np.zeros((n + 1, 2), np.float32)},
            "Expected scores output batch size of 2. Got: 3",
        ),
        (
            "regress",
            SignatureInfo(PREDICT, {"inputs": EXAMPLES}, {"outputs": tensor_info("o:0")}),
            lambda n: {"outputs": np.zeros((n, 1), np.float64)},
            "Expected output Tensor of DT_FLOAT.  Got: DT_DOUBLE",
        ),
        (
            "regress",
            SignatureInfo(PREDICT, {"inputs": EXAMPLES}, {"outputs": tensor_info("o:0")}),
            lambda n: {"outputs": np.zeros((n, 2), np.float32)},
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got [2,2]",
        ),
        (
            "regress",
            SignatureInfo(PREDICT, {"inputs": EXAMPLES}, {"y": tensor_info("o:0")}),
            lambda n: {"y": np.zeros(n, np.float32)},
            "No regression outputs found in SignatureDef: ",
        ),
    ],
)
def test_signature_and_output_checks_use_tf_servings_messages(
    tmp_path: Path, method: str, signature: SignatureInfo, outputs: Outputs, message: str
) -> None:
    engine = serve(tmp_path, {"s": (signature, outputs)})
    with pytest.raises(TfServeError) as info:
        call(engine, method, "s")
    assert info.value.code is ErrorCode.INVALID_ARGUMENT
    if message.endswith(": "):  # the message ends with the signature's DebugString
        assert info.value.message == message + signature_debug_string(signature)
    else:
        assert info.value.message == message
    engine.stop()


def test_signature_debug_string_is_protobuf_text_format() -> None:
    from google.protobuf import text_format

    from tfserve_lab.protocol.grpc.metadata import signature_def_map

    signature = SignatureInfo(
        PREDICT,
        {"inputs": EXAMPLES, "a": tensor_info("a:0", "DT_INT64", None)},
        {"scores": tensor_info("s:0", shape=(-1, 3)), "classes": tensor_info("c:0", "DT_STRING")},
    )
    proto = signature_def_map({"k": signature}).signature_def["k"]
    assert signature_debug_string(signature) == text_format.MessageToString(proto)
    assert tensor_shape_string((2, -1, 3)) == "[2,?,3]"
