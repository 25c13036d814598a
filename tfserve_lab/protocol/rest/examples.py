"""Classify/regress request bodies: JSON examples to serialized ``tf.Example`` protos, as TF Serving builds them.

``FillClassifyRegressRequestFromJson`` turns ``examples`` (and an optional
``context``) into an ``ExampleList`` or ``ExampleListWithContext``. The model
then gets one serialized string per example; with a context TF Serving
concatenates the serialized context and the serialized example
(``InputToSerializedExampleTensor``), which parses as their merge: context
features first, an example's own feature winning on a shared key. The bytes
here are exactly those strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from tfserve_lab.errors import InvalidArgument
from tfserve_lab.protocol.rest.jsonparse import decode_b64_object, format_error, is_b64_object, signature_name_of
from tfserve_lab.protocol.rest.jsontext import json_type_name

__all__ = ["ExamplesBody", "decode_examples_request"]

_INT64_MAX = 2**63 - 1
_KIND_NAMES = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64", None: "UNKNOWN"}


@dataclass(frozen=True)
class ExamplesBody:
    """A decoded classify/regress request: signature name as given, one serialized Example per example."""

    signature_name: str
    examples: list[bytes]


def decode_examples_request(doc: dict[str, Any]) -> ExamplesBody:
    """Builds the serialized examples of a ``:classify`` or ``:regress`` body.

    Features map from JSON as TF Serving maps them: integers and booleans to
    ``int64_list``, other numbers to ``float_list`` (float32), strings and
    ``{"b64": ...}`` to ``bytes_list``; a feature is a value or a list of them.

    Args:
        doc: The parsed body (``parse_json_body``).

    Returns:
        The signature name (``""`` when absent) and the model's input strings.

    Raises:
        InvalidArgument: With TF Serving's message for a malformed body.
    """
    # Lazy: the proto modules live in the tensorflow package, whose import is heavy.
    from tensorflow.core.example import example_pb2, feature_pb2

    signature_name = signature_name_of(doc)
    context = b""
    if "context" in doc:
        context = _example(doc["context"], example_pb2, feature_pb2).SerializeToString(deterministic=True)
    if "examples" not in doc:
        raise format_error(doc, "When method is classify, key 'examples' is expected and was not found")
    examples = doc["examples"]
    if type(examples) is not list:
        raise format_error(doc, "Expecting 'examples' value to be an list/array")
    if not examples:
        raise format_error(doc, "'examples' value is an empty array")
    serialized = [
        context + _example(item, example_pb2, feature_pb2).SerializeToString(deterministic=True) for item in examples
    ]
    return ExamplesBody(signature_name, serialized)


def _example(value: Any, example_pb2: ModuleType, feature_pb2: ModuleType) -> Any:
    """``MakeExampleFromJsonObject``."""
    if type(value) is not dict:
        raise InvalidArgument(f"Example must be JSON object but got JSON {json_type_name(value)}")
    example = example_pb2.Example()
    for name, content in value.items():
        # A fresh Feature per key, stored only when every value fits (a later key replaces it).
        feature = feature_pb2.Feature()
        for item in content if type(content) is list else (content,):
            _add_value(item, name, feature)
        example.features.feature[name].CopyFrom(feature)
    return example


def _add_value(item: Any, name: str, feature: Any) -> None:
    """``AddValueToFeature``: one JSON value into a Feature, which keeps the kind of its first value."""

    def kind_list(kind: str) -> Any:
        current = feature.WhichOneof("kind")
        if current not in (None, kind):
            raise InvalidArgument(f"Unexpected element type in feature: {name} expecting type: {_KIND_NAMES[current]}")
        return getattr(feature, kind).value

    if item is None or type(item) is list or (type(item) is dict and not is_b64_object(item)):
        raise InvalidArgument(f"Feature: {name} has element with unexpected JSON type: {json_type_name(item)}")
    if type(item) is bool:
        kind_list("int64_list").append(int(item))
    elif type(item) is dict:
        kind_list("bytes_list").append(decode_b64_object(item))
    elif type(item) is str:
        kind_list("bytes_list").append(item.encode("utf-8", "surrogateescape"))
    elif type(item) is float or not -(2**63) <= item < 2**64:
        # rapidjson's GetFloat() narrows the double; out-of-range values become +-inf.
        with np.errstate(over="ignore"):
            kind_list("float_list").append(float(np.float32(float(item))))
    else:
        values = kind_list("int64_list")
        if item > _INT64_MAX:
            raise InvalidArgument(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
        values.append(item)
