"""Classify, regress and MultiInference on tf.Examples: TF Serving's signature checks and result checks.

Each check raises with the message of the TF Serving function named in its
docstring (``classifier.cc``, ``regressor.cc``, ``multi_inference.cc``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tfserve_lab.core.dtypes import dt_for_numpy
from tfserve_lab.core.signature_text import signature_debug_string, tensor_shape_string
from tfserve_lab.core.types import DEFAULT_SIGNATURE, SignatureInfo
from tfserve_lab.errors import ErrorCode, InvalidArgument, TfServeError

__all__ = [
    "CLASSIFY_METHOD",
    "PREDICT_METHOD",
    "REGRESS_METHOD",
    "InferenceTask",
    "check_tasks",
    "classification_signature",
    "classifications",
    "examples_tensor",
    "regression_signature",
    "regression_values",
    "task_signatures",
]

CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
PREDICT_METHOD = "tensorflow/serving/predict"

# One MultiInference task: its model name, signature name and method name.
InferenceTask = tuple[str, str, str]


def classification_signature(signatures: Mapping[str, SignatureInfo], key: str, *, method_check: bool) -> SignatureInfo:
    """The signature a classify call runs, checked as ``PreProcessClassification`` does."""
    info = _examples_signature(signatures, key, CLASSIFY_METHOD, "classification", method_check)
    if len(info.outputs) not in (1, 2):
        raise InvalidArgument(f"Expected one or two output Tensors, found {len(info.outputs)}")
    if "inputs" not in info.inputs:
        raise InvalidArgument(f"No classification inputs found in SignatureDef: {signature_debug_string(info)}")
    if "classes" not in info.outputs and "scores" not in info.outputs:
        raise InvalidArgument(
            'Expected classification signature outputs to contain at least one of "classes" or "scores". '
            f"Signature was: {signature_debug_string(info)}"
        )
    return info


def regression_signature(signatures: Mapping[str, SignatureInfo], key: str, *, method_check: bool) -> SignatureInfo:
    """The signature a regress call runs, checked as ``PreProcessRegression`` does."""
    info = _examples_signature(signatures, key, REGRESS_METHOD, "regression", method_check)
    if len(info.outputs) != 1:
        raise InvalidArgument("Expected one output Tensor.")
    if "inputs" not in info.inputs:
        raise InvalidArgument(f"No regression inputs found in SignatureDef: {signature_debug_string(info)}")
    if "outputs" not in info.outputs:
        raise InvalidArgument(f"No regression outputs found in SignatureDef: {signature_debug_string(info)}")
    return info


def _examples_signature(
    signatures: Mapping[str, SignatureInfo], key: str, method: str, kind: str, method_check: bool
) -> SignatureInfo:
    info = signatures.get(key)
    if info is None:
        raise InvalidArgument(f"No signature was found with the name: {key}")
    if method_check and info.method_name != method:
        raise InvalidArgument(f"Expected {kind} signature method_name to be {method}. Was: {info.method_name}")
    if len(info.inputs) != 1:
        raise InvalidArgument("Expected one input Tensor.")
    return info


def check_tasks(tasks: Sequence[InferenceTask]) -> None:
    """A MultiInference request's tasks, checked as ``TensorFlowMultiInferenceRunner::Infer`` begins."""
    seen: set[str] = set()
    for model, signature, _ in tasks:
        if not model:
            raise InvalidArgument("Found ModelSpec with an empty model name.")
        if model != tasks[0][0]:
            raise InvalidArgument("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        key = signature or DEFAULT_SIGNATURE
        if key in seen:
            raise InvalidArgument(f"Duplicate evaluation of signature: {key}")
        seen.add(key)


def task_signatures(
    signatures: Mapping[str, SignatureInfo], tasks: Sequence[InferenceTask], *, method_check: bool
) -> list[str]:
    """Each MultiInference task's signature key, checked as its method's pre-processing checks it."""
    keys: list[str] = []
    input_tensor = ""
    for _, signature, method in tasks:
        key = signature or DEFAULT_SIGNATURE
        if key not in signatures:
            raise InvalidArgument(f"Requested signature not found in model graph: {key}")
        if method == CLASSIFY_METHOD:
            info = classification_signature(signatures, key, method_check=method_check)
        elif method == REGRESS_METHOD:
            info = regression_signature(signatures, key, method_check=method_check)
        else:
            raise TfServeError(f"Unsupported signature method_name: {method}", code=ErrorCode.UNIMPLEMENTED)
        tensor = info.inputs["inputs"].name
        if input_tensor and tensor != input_tensor:
            raise InvalidArgument("Input tensor must be the same for all Signatures.")
        input_tensor = tensor
        keys.append(key)
    return keys


def examples_tensor(examples: Sequence[bytes]) -> np.ndarray:
    """The serialized examples as the signature's one string input, [batch]."""
    if not examples:
        raise InvalidArgument("Input is empty.")
    tensor = np.empty(len(examples), dtype=object)
    tensor[:] = list(examples)
    return tensor


def classifications(outputs: Mapping[str, np.ndarray], count: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The classes and scores outputs, checked as ``PostProcessClassificationResult`` checks them."""
    checked: dict[str, np.ndarray] = {}
    for name, dtype in (("classes", "DT_STRING"), ("scores", "DT_FLOAT")):
        array = outputs.get(name)
        if array is None:
            continue
        if array.ndim != 2:
            raise InvalidArgument(
                f"Expected Tensor shape: [batch_size num_classes] but got {tensor_shape_string(array.shape)}"
            )
        actual = _dtype_name(array)
        if actual != dtype:
            raise InvalidArgument(f"Expected {name} Tensor of {dtype}. Got: {actual}")
        if array.shape[0] != count:
            raise InvalidArgument(f"Expected {name} output batch size of {count}. Got: {array.shape[0]}")
        checked[name] = array
    classes, scores = checked.get("classes"), checked.get("scores")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise InvalidArgument(
            f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. {scores.shape[1]}"
        )
    return classes, scores


def regression_values(array: np.ndarray, count: int) -> np.ndarray:
    """A regression output, [batch_size] or [batch_size, 1], as [batch_size] (``PostProcessRegressionResult``)."""
    if not (array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1)):
        raise InvalidArgument(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
            f"{tensor_shape_string(array.shape)}"
        )
    if array.shape[0] != count:
        raise InvalidArgument(f"Input batch size did not match output batch size: {count} vs. {array.shape[0]}")
    actual = _dtype_name(array)
    if actual != "DT_FLOAT":
        raise InvalidArgument(f"Expected output Tensor of DT_FLOAT.  Got: {actual}")
    return array.reshape(count)


def _dtype_name(array: np.ndarray) -> str:
    try:
        return dt_for_numpy(array.dtype)
    except KeyError:
        return "DT_" + str(array.dtype.name).upper()
