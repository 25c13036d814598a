"""TF Serving's REST JSON <-> numpy (``util/json_tensor.cc``): the one module the REST handlers call.

Decoding a predict body lives here and mirrors ``FillPredictRequestFromJson``
rule for rule and message for message. It runs in tiers, fastest first, each
answering exactly as the rules would or declining: ``numeric_json`` reads
wide bodies of plain floats without a Python float per value; ``vectorized``
takes rectangular lists of plain numbers to numpy in one call; the
rule-by-rule path here takes anything else (strings, b64, mixed or malformed
values) and words every error. ``PredictText`` chains them as served;
``decode_predict_exactly`` and ``decode_predict_vectorized`` run one tier
alone, for the test that they all agree. The rest is re-exported: response
bodies from ``jsonwrite``, parsing from ``jsonparse``, examples from
``examples``, model status and metadata from ``protojson``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfserve_lab.core.dtypes import NUMPY_BY_DT
from tfserve_lab.core.types import SignatureInfo, TensorInfo
from tfserve_lab.errors import ErrorCode, InvalidArgument, TfServeError
from tfserve_lab.protocol.rest.examples import ExamplesBody, decode_examples_request
from tfserve_lab.protocol.rest.jsonparse import (
    JsonDoc,
    decode_b64_object,
    format_error,
    is_b64_object,
    parse_json_body,
    signature_name_of,
)
from tfserve_lab.protocol.rest.jsontext import json_type_name, shape_text, type_string, value_to_string
from tfserve_lab.protocol.rest.jsonwrite import (
    JSON_FLOATS,
    encode_classify_response,
    encode_error,
    encode_predict_response,
    encode_regress_response,
)
from tfserve_lab.protocol.rest.numeric_json import parse_numeric_body
from tfserve_lab.protocol.rest.protojson import encode_model_metadata, encode_model_status
from tfserve_lab.protocol.rest.vectorized import INT_RANGES, vectorized_instances, vectorized_tensor

__all__ = [
    "ExamplesBody",
    "PredictBody",
    "PredictText",
    "decode_examples_request",
    "decode_predict_inputs",
    "decode_predict_request",
    "encode_classify_response",
    "encode_error",
    "encode_model_metadata",
    "encode_model_status",
    "encode_predict_response",
    "encode_regress_response",
    "parse_json_body",
    "signature_name_of",
]


@dataclass(frozen=True)
class PredictBody:
    """A decoded predict body: signature name as given, inputs by alias, and its format."""

    signature_name: str
    inputs: dict[str, np.ndarray]
    row_format: bool


class PredictText:
    """A ``:predict`` body parsed once, before the model lookup (as ``FillPredictRequestFromJson`` does).

    Raises (from the constructor):
        TfServeError: TF Serving's parse error, or a ``signature_name`` that is not a string.
    """

    __slots__ = ("_body", "_doc", "_numeric", "signature_name")

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._numeric = parse_numeric_body(body)
        self._doc: JsonDoc | None = None
        if self._numeric is not None:
            self.signature_name = self._numeric.signature_name
        else:
            self._doc = parse_json_body(body)
            self.signature_name = signature_name_of(self._doc)

    def decode(self, signature: SignatureInfo) -> PredictBody:
        """The inputs for ``signature`` (the one ``signature_name`` names, or the default).

        Raises:
            TfServeError: INVALID_ARGUMENT (or UNIMPLEMENTED) with TF Serving's message.
        """
        if self._numeric is not None:
            inputs = self._numeric.inputs_for(signature.inputs)
            if inputs is not None:
                return PredictBody(self.signature_name, inputs, self._numeric.row_format)
        if self._doc is None:  # valid JSON, but not plain floats for this signature
            self._doc = parse_json_body(self._body)
        return decode_predict_inputs(self._doc, signature)


def decode_predict_request(body: bytes, signature: SignatureInfo) -> PredictBody:
    """Parses and decodes a ``:predict`` body against a known signature.

    Raises:
        TfServeError: INVALID_ARGUMENT with TF Serving's message (UNIMPLEMENTED for types JSON cannot fill).
    """
    return PredictText(body).decode(signature)


def decode_predict_inputs(doc: dict[str, Any], signature: SignatureInfo) -> PredictBody:
    """Decodes the tensors of a parsed ``:predict`` body (row ``instances`` or columnar ``inputs``).

    Each tensor is read by ``vectorized`` where it can be, else rule by rule.

    Args:
        doc: The parsed body; a ``JsonDoc`` from ``parse_json_body`` enables the vectorized path fully.
        signature: The signature named by ``signature_name_of(doc)`` (or the default one).

    Returns:
        Arrays of the signature's dtypes (object arrays of bytes for DT_STRING).

    Raises:
        TfServeError: INVALID_ARGUMENT (or UNIMPLEMENTED) with TF Serving's message.
    """
    decoded = _decode(doc, signature, vectorized=True, exact=True)
    assert decoded is not None  # the rule-by-rule path answers every body
    return decoded


def decode_predict_exactly(doc: dict[str, Any], signature: SignatureInfo) -> PredictBody:
    """``decode_predict_inputs`` rule by rule alone: the reference the faster paths must agree with.

    Raises:
        TfServeError: INVALID_ARGUMENT (or UNIMPLEMENTED) with TF Serving's message.
    """
    decoded = _decode(doc, signature, vectorized=False, exact=True)
    assert decoded is not None  # the rule-by-rule path answers every body
    return decoded


def decode_predict_vectorized(doc: dict[str, Any], signature: SignatureInfo) -> PredictBody | None:
    """``decode_predict_inputs`` by ``vectorized`` alone: None where a tensor needs the rule-by-rule path.

    Raises:
        TfServeError: the errors found before any tensor is read (format, signature), as the other paths.
    """
    return _decode(doc, signature, vectorized=True, exact=False)


def _decode(doc: dict[str, Any], signature: SignatureInfo, *, vectorized: bool, exact: bool) -> PredictBody | None:
    name = signature_name_of(doc)
    infos = signature.inputs
    if not infos:
        raise InvalidArgument(f"Failed to get input map for signature: {name or 'DEFAULT'}")
    # A bool can hide in a numeric list once numpy has read it as 0/1; only the text can tell.
    may_have_bools: Callable[[], bool] = (lambda: doc.may_have_bools) if isinstance(doc, JsonDoc) else (lambda: True)
    if "instances" in doc:
        if "inputs" in doc:
            raise format_error(
                doc, "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist "
            )
        rows = doc["instances"]
        if type(rows) is not list:
            raise format_error(doc, "Expecting 'instances' to be an list/array")
        if not rows:
            raise format_error(doc, "No values in 'instances' array")
        inputs = vectorized_instances(rows, infos, may_have_bools) if vectorized else None
        if inputs is None and exact:
            inputs = _instances(rows, infos)
        return None if inputs is None else PredictBody(name, inputs, row_format=True)
    if "inputs" in doc:
        read = (_tensor if exact else vectorized_tensor) if vectorized else _exact_tensor
        columns = _columns(doc["inputs"], infos, read, may_have_bools)
        return None if columns is None else PredictBody(name, columns, row_format=False)
    raise InvalidArgument("Missing 'inputs' or 'instances' key")


def _is_named_object(value: Any) -> bool:
    return type(value) is dict and not is_b64_object(value)


def _type_error(value: Any, dtype: str) -> InvalidArgument:
    return InvalidArgument(
        f"JSON Value: {value_to_string(value)} Type: {json_type_name(value)} is not of expected type: {type_string(dtype)}"
    )


@functools.cache
def _leaf(dtype: str) -> Callable[[Any], Any]:
    """``FillTensorProto``'s handling of one non-list value, then ``AddValueToTensor``."""
    low, high = INT_RANGES.get(dtype, (0, -1))

    def leaf(value: Any) -> Any:
        kind = type(value)
        if kind is dict:
            if dtype == "DT_STRING":
                return decode_b64_object(value)
            raise _type_error(value, dtype)
        if dtype in JSON_FLOATS:
            if kind is float or kind is int:
                return float(value)
        elif low <= high:
            if kind is int and low <= value <= high:
                return value
        elif dtype == "DT_BOOL":
            if kind is bool:
                return value
        elif dtype == "DT_STRING":
            if kind is str:
                return value.encode("utf-8", "surrogateescape")
        else:
            raise TfServeError(
                f"Conversion of JSON Value: {value_to_string(value)} to type: {type_string(dtype)}",
                code=ErrorCode.UNIMPLEMENTED,
            )
        raise _type_error(value, dtype)

    return leaf


# numpy holds at most 64 dimensions (TensorFlow 254): deeper nesting is refused, not crashed on.
_MAX_RANK = 64


def _dense_shape(value: Any) -> list[int]:
    """``GetDenseTensorShape``: the sizes along the first element of each nested list."""
    shape = []
    while type(value) is list:
        shape.append(len(value))
        if len(shape) > _MAX_RANK:
            raise InvalidArgument(f"Too many dimensions in tensor: lists nested deeper than {_MAX_RANK} levels.")
        if not value:
            break
        value = value[0]
    return shape


def _fill(value: Any, level: int, shape: list[int], leaf: Callable[[Any], Any], out: list[Any]) -> None:
    """``FillTensorProto``: every leaf at depth ``len(shape)``, every list of its level's size."""
    if type(value) is not list:
        if level != len(shape):
            raise InvalidArgument(
                f"JSON Value: {value_to_string(value)} found at incorrect level: {level + 1} "
                f"in the JSON DOM. Expected at level: {len(shape)}"
            )
        out.append(leaf(value))
        return
    if level >= len(shape):
        raise InvalidArgument(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
    if len(value) != shape[level]:
        raise InvalidArgument(
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, leaf, out)


def _array(values: list[Any], shape: list[int], dtype: str) -> np.ndarray:
    target = NUMPY_BY_DT.get(dtype)
    if target is None:
        raise TfServeError(f"Conversion of JSON Value: [] to type: {type_string(dtype)}", code=ErrorCode.UNIMPLEMENTED)
    if dtype == "DT_STRING":
        array = np.empty(len(values), dtype=object)
        array[:] = values
    elif dtype in INT_RANGES:
        # Through a wide type: narrow ones wrap like TF's static_cast of int_val.
        array = np.array(values, dtype=np.uint64 if dtype == "DT_UINT64" else np.int64).astype(target)
    else:
        with np.errstate(over="ignore"):
            array = np.array(values, dtype=target)
    return array.reshape(shape)


def _exact_tensor(value: Any, dtype: str, may_have_bools: Callable[[], bool] | None = None) -> np.ndarray:
    """``GetDenseTensorShape`` then ``FillTensorProto`` (the rules see booleans as such: no text check)."""
    shape = _dense_shape(value)
    values: list[Any] = []
    _fill(value, 0, shape, _leaf(dtype), values)
    return _array(values, shape, dtype)


def _tensor(value: Any, dtype: str, may_have_bools: Callable[[], bool]) -> np.ndarray:
    array = vectorized_tensor(value, dtype, may_have_bools)
    return array if array is not None else _exact_tensor(value, dtype)


# How ``_columns`` reads one tensor: value, DataType name, whether the text may hold booleans.
_TensorReader = Callable[[Any, str, Callable[[], bool]], "np.ndarray | None"]


def _status(error: TfServeError) -> str:
    # absl::Status::ToString(), which TF Serving embeds in the per-element messages.
    return f"{error.code.name}: {error.message}"


def _instances(rows: list[Any], infos: Mapping[str, TensorInfo]) -> dict[str, np.ndarray]:
    """``FillTensorMapFromInstancesList``, rule by rule."""
    if type(rows[0]) is not dict and len(infos) > 1:
        raise InvalidArgument(
            "instances is a plain list, but expecting list of objects as multiple input tensors required as per tensorinfo_map"
        )
    objects = _is_named_object(rows[0])
    shapes: dict[str, list[int]] = {}
    values: dict[str, list[Any]] = {}

    def add(item: Any, name: str) -> None:  # AddInstanceItem
        info = infos.get(name)
        if info is None:
            raise InvalidArgument(f"JSON object: does not have named input: {name}")
        shape = _dense_shape(item)
        leaves: list[Any] = []
        _fill(item, 0, shape, _leaf(info.dtype), leaves)
        if name not in shapes:
            shapes[name], values[name] = shape, leaves
            return
        if math.prod(shapes[name]) != len(leaves):
            raise InvalidArgument(f"Expecting tensor size: {math.prod(shapes[name])} but got: {len(leaves)}")
        if shapes[name] != shape:
            raise InvalidArgument(f"Expecting shape {shape_text(shapes[name])} but got: {shape_text(shape)}")
        values[name].extend(leaves)

    for count, row in enumerate(rows):
        if objects:
            if not _is_named_object(row):
                raise InvalidArgument(f"Expecting object but got list at item {count} of input list")
            for name, item in row.items():
                try:
                    add(item, name)
                except TfServeError as error:
                    raise InvalidArgument(
                        f"Failed to process element: {count} key: {name} of 'instances' list. Error: {_status(error)}"
                    ) from None
            if row.keys() != infos.keys():
                raise InvalidArgument(
                    f"Failed to process element: {count} of 'instances' list. JSON object: {value_to_string(row)} "
                    f"keys must be equal to: {','.join(sorted(infos))}"
                )
        else:
            if _is_named_object(row):
                raise InvalidArgument(f"Expecting value/list but got object at item {count} of input list")
            try:
                add(row, next(iter(infos)))
            except TfServeError as error:
                raise InvalidArgument(
                    f"Failed to process element: {count} of 'instances' list. Error: {_status(error)}"
                ) from None
    return {name: _array(values[name], [len(rows), *shapes[name]], infos[name].dtype) for name in values}


def _columns(
    value: Any, infos: Mapping[str, TensorInfo], read: _TensorReader, may_have_bools: Callable[[], bool]
) -> dict[str, np.ndarray] | None:
    """``FillTensorMapFromInputsMap``: one value/list for a single input, else an object by input name.

    None as soon as ``read`` declines a tensor (only the vectorized path alone declines).
    """
    if not _is_named_object(value):
        if len(infos) > 1:
            raise InvalidArgument(
                "inputs is a plain value/list, but expecting an object as multiple input tensors required as per tensorinfo_map"
            )
        name, info = next(iter(infos.items()))
        array = read(value, info.dtype, may_have_bools)
        return None if array is None else {name: array}
    out = {}
    for name, info in infos.items():
        if name not in value:
            raise InvalidArgument(f"Missing named input: {name} in 'inputs' object.")
        array = read(value[name], info.dtype, may_have_bools)
        if array is None:
            return None
        out[name] = array
    return out
