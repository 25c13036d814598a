"""REST codec: TF Serving's json_tensor.cc cases, exact error texts, byte-exact bodies, round trips."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tfserve_lab.core.types import Dim, SignatureInfo, TensorInfo, VersionState, VersionStatus
from tfserve_lab.errors import ErrorCode, TfServeError
from tfserve_lab.protocol.rest import codec
from tfserve_lab.protocol.rest.jsonparse import parse_json_body
from tfserve_lab.protocol.rest.jsontext import float_token, value_to_string
from tfserve_lab.protocol.rest.jsonwrite import float_tokens


def sig(**inputs: str) -> SignatureInfo:
    """A predict signature with the given input aliases and DataType names."""
    return SignatureInfo(
        "tensorflow/serving/predict", {name: TensorInfo(f"{name}:0", dtype) for name, dtype in inputs.items()}, {}
    )


def outcome(raw: bytes, signature: SignatureInfo) -> codec.PredictBody | TfServeError:
    try:
        return codec.decode_predict_request(raw, signature)
    except TfServeError as failure:
        return failure


def decode_both_ways(body: str | bytes, **inputs: str) -> codec.PredictBody | TfServeError:
    """Decodes ``body``, and checks that the same body padded past the numeric reader's threshold agrees.

    Small bodies take orjson's path and wide ones ``numeric_json``'s; trailing
    spaces change nothing in JSON, so every case here runs through both.
    """
    raw = body.encode() if isinstance(body, str) else body
    signature = sig(**inputs)
    result, wide = outcome(raw, signature), outcome(raw + b" " * 600, signature)
    if isinstance(result, TfServeError):
        assert isinstance(wide, TfServeError)
        if not result.message.startswith("JSON Parse error"):  # parse error offsets move with the padding
            assert (wide.code, wide.message) == (result.code, result.message)
        return result
    assert isinstance(wide, codec.PredictBody)
    assert (wide.signature_name, wide.row_format) == (result.signature_name, result.row_format)
    assert wide.inputs.keys() == result.inputs.keys()
    for name, array in result.inputs.items():
        assert wide.inputs[name].dtype == array.dtype
        np.testing.assert_array_equal(wide.inputs[name], array)
    return result


def decode(body: str | bytes, **inputs: str) -> codec.PredictBody:
    result = decode_both_ways(body, **inputs)
    if isinstance(result, TfServeError):
        raise result
    return result


def error(body: str | bytes, **inputs: str) -> TfServeError:
    with pytest.raises(TfServeError) as info:
        decode(body, **inputs)
    return info.value


def message(body: str | bytes, **inputs: str) -> str:
    return error(body, **inputs).message


def wrapped(index: int, inner: str, key: str | None = None) -> str:
    """The per-element wrapping FillTensorMapFromInstancesList puts around an inner status."""
    where = f"{index} key: {key}" if key else f"{index}"
    return f"Failed to process element: {where} of 'instances' list. Error: INVALID_ARGUMENT: {inner}"


# --- Parsing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"   ", "The document is empty. at offset: 3"),
        (b'{"a":}', "Invalid value. at offset: 5"),
        (b'{"a":tru}', "Invalid value. at offset: 8"),
        (b'{"a":-}', "Invalid value. at offset: 6"),
        (b'{"a" 1}', "Missing a colon after a name of object member. at offset: 5"),
        (b'{"a":1', "Missing a comma or '}' after an object member. at offset: 6"),
        (b"[1 2]", "Missing a comma or ']' after an array element. at offset: 3"),
        (b"{1:2}", "Missing a name for object member. at offset: 1"),
        (b'{"a":"\\x"}', "Invalid escape character in string. at offset: 6"),
        (b'{"a":"\\u12G4"}', "Incorrect hex digit after \\u escape in string. at offset: 6"),
        (b'{"a":"\\ud800"}', "The surrogate pair in string is invalid. at offset: 6"),
        (b'{"a":"abc', "Missing a closing quotation mark in string. at offset: 9"),
        (b'{"a":"a\x01"}', "Invalid encoding in string. at offset: 7"),
        (b'{"a":1.}', "Miss fraction part in number. at offset: 7"),
        (b'{"a":1e}', "Miss exponent in number. at offset: 7"),
        (b'{"a":NaX}', "Miss fraction part in number. at offset: 7"),
        (b'{"a":1e400}', "Number too big to be stored in double. at offset: 5"),
        (b"{} x", "The document root must not be followed by other values. at offset: 3"),
    ],
)
def test_bad_json_gets_rapidjsons_message_and_offset(body: bytes, expected: str) -> None:
    with pytest.raises(TfServeError) as info:
        parse_json_body(body)
    assert info.value.code == ErrorCode.INVALID_ARGUMENT
    assert info.value.message == f"JSON Parse error: {expected}"


def test_empty_body_and_non_object_documents() -> None:
    assert message(b"", x="DT_FLOAT") == "JSON Parse error: The document is empty"
    assert message(b"[1,2]", x="DT_FLOAT") == "JSON Value: [\n    1,\n    2\n] Is not object"
    assert message(b"2.5", x="DT_FLOAT") == "JSON Value: 2.5 Is not object"


def test_nan_and_infinity_tokens_parse_only_outside_strings() -> None:
    body = decode('{"instances": [NaN, Infinity, -Infinity, Inf, -Inf, -NaN]}', x="DT_FLOAT")
    assert str(body.inputs["x"].tolist()) == "[nan, inf, -inf, inf, -inf, nan]"
    body = decode('{"signature_name": "NaN Infinity", "inputs": ["NaN", "Infinity"]}', x="DT_STRING")
    assert body.signature_name == "NaN Infinity"
    assert body.inputs["x"].tolist() == [b"NaN", b"Infinity"]


def test_rapidjson_leniencies_bom_raw_bytes_and_nul_terminator() -> None:
    body = decode(b'\xef\xbb\xbf{"instances": ["\xff\xfe", "a"]}\x00ignored', x="DT_STRING")
    assert body.inputs["x"].tolist() == [b"\xff\xfe", b"a"]


def test_integers_beyond_64_bits_are_doubles() -> None:
    assert message('{"instances": [18446744073709551616]}', x="DT_INT64") == wrapped(
        0, "JSON Value: 1.84467441e+19 Type: Number is not of expected type: int64"
    )
    assert decode('{"inputs": [18446744073709551616]}', x="DT_FLOAT").inputs["x"].tolist() == [2.0**64]


# --- Predict requests: json_tensor_test.cc ---------------------------------------------------------


def test_single_unnamed_tensor() -> None:
    body = decode('{"instances": [[1,2],[3,4],[5,6]]}', default="DT_INT32")
    assert body.row_format
    assert body.signature_name == ""
    assert body.inputs["default"].dtype == np.int32
    assert body.inputs["default"].tolist() == [[1, 2], [3, 4], [5, 6]]


def test_mixed_int_and_float_values_for_float_and_double() -> None:
    x = decode('{"instances": [1, 2.0, 3, 4, 5.003, 0.007, 0.0]}', default="DT_FLOAT").inputs["default"]
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, np.array([1, 2, 3, 4, 5.003, 0.007, 0], np.float32))
    y = decode('{"instances": [1.0, 2, 3, 4, 0.662, 0, 0.0]}', default="DT_DOUBLE").inputs["default"]
    assert y.dtype == np.float64
    assert y.tolist() == [1.0, 2.0, 3.0, 4.0, 0.662, 0.0, 0.0]


def test_float_precision_loss_overflow_and_underflow_are_accepted() -> None:
    # FloatTensorWithPrecisionLoss, ...ExceedsMaxReturnsInf, ...ExceedsMinReturnsZero.
    for text in ("1435774380", "1435774380.0"):
        assert decode(f'{{"instances": [{text}]}}', x="DT_FLOAT").inputs["x"][0] == np.float32(1435774380)
    assert decode('{"instances": [1.79769e+308, -1.79769e+308]}', x="DT_FLOAT").inputs["x"].tolist() == [
        math.inf,
        -math.inf,
    ]
    tiny = decode('{"instances": [2.22507e-308, -2.22507e-308]}', x="DT_FLOAT").inputs["x"]
    assert tiny.tolist() == [0.0, 0.0]
    assert math.copysign(1, tiny[1]) == -1


def test_signature_name_is_kept_as_given() -> None:
    body = decode('{"signature_name": "predict_images", "instances": [[1,2]]}', default="DT_INT32")
    assert body.signature_name == "predict_images"
    assert body.inputs["default"].shape == (1, 2)


def test_base64_scalars_lists_and_named() -> None:
    scalars = decode('{"instances": [ { "b64" : "aGVsbG8=" }, { "b64": "d29ybGQ=" } ]}', default="DT_STRING")
    assert scalars.inputs["default"].dtype == object
    assert scalars.inputs["default"].tolist() == [b"hello", b"world"]
    lists = decode('{"instances": [ [{ "b64" : "aGVsbG8=" }], [{ "b64": "d29ybGQ=" }] ]}', default="DT_STRING")
    assert lists.inputs["default"].shape == (2, 1)
    named = decode(
        '{"instances": [{"default": [ [{ "b64" : "aGVsbG8=" }], [{ "b64": "d29ybGQ=" }] ]}]}', default="DT_STRING"
    )
    assert named.inputs["default"].shape == (1, 2, 1)
    assert named.inputs["default"].ravel().tolist() == [b"hello", b"world"]


def test_multiple_named_tensors() -> None:
    body = decode(
        """{"instances": [
        {"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"], "float_tensor": [1.0, NaN], "dbl_tensor": [NaN]},
        {"int_tensor": [[7,8],[9,0],[1,2]], "str_tensor": ["baz", "bat"], "float_tensor": [2.0, Infinity], "dbl_tensor": [2.0]}
        ]}""",
        int_tensor="DT_INT32",
        str_tensor="DT_STRING",
        float_tensor="DT_FLOAT",
        dbl_tensor="DT_DOUBLE",
    )
    assert body.inputs["int_tensor"].shape == (2, 3, 2)
    assert body.inputs["str_tensor"].tolist() == [[b"foo", b"bar"], [b"baz", b"bat"]]
    assert str(body.inputs["float_tensor"].tolist()) == "[[1.0, nan], [2.0, inf]]"
    assert body.inputs["float_tensor"].dtype == np.float32
    assert str(body.inputs["dbl_tensor"].tolist()) == "[[nan], [2.0]]"


def test_columnar_single_and_multiple() -> None:
    for text in ('{"inputs": {"int_tensor": [[[1,2],[3,4],[5,6]]]}}', '{"inputs": [[[1,2],[3,4],[5,6]]]}'):
        body = decode(text, int_tensor="DT_INT32")
        assert not body.row_format
        assert body.inputs["int_tensor"].shape == (1, 3, 2)
    body = decode(
        '{"inputs": {"int_tensor": [[[1,2],[3,4],[5,6]]], "str_tensor": ["foo", "bar"], "bin_tensor": { "b64" : "aGVsbG8=" }}}',
        int_tensor="DT_INT32",
        str_tensor="DT_STRING",
        bin_tensor="DT_STRING",
    )
    assert body.inputs["str_tensor"].tolist() == [b"foo", b"bar"]
    assert body.inputs["bin_tensor"].shape == ()
    assert body.inputs["bin_tensor"].item() == b"hello"


def test_instances_list_of_objects_with_one_input_and_extra_columnar_keys() -> None:
    assert decode('{"instances": [{"x": [1.5]}, {"x": [2.5]}]}', x="DT_FLOAT").inputs["x"].tolist() == [[1.5], [2.5]]
    # FillTensorMapFromInputsMap only looks up the signature's inputs: other keys are ignored.
    assert decode('{"inputs": {"x": 3, "unused": "?"}}', x="DT_INT64").inputs["x"].tolist() == 3


def test_value_types_and_integer_wrapping() -> None:
    assert decode('{"inputs": [true, false]}', x="DT_BOOL").inputs["x"].dtype == np.bool_
    assert decode('{"inputs": [9007199254740993]}', x="DT_INT64").inputs["x"].tolist() == [9007199254740993]
    assert decode('{"inputs": [18446744073709551615]}', x="DT_UINT64").inputs["x"].tolist() == [2**64 - 1]
    # int_val carries int32; TF's static_cast to uint8/int8 wraps.
    assert decode('{"inputs": [300, -1]}', x="DT_UINT8").inputs["x"].tolist() == [44, 255]
    assert decode('{"inputs": "caf\\u00e9"}', x="DT_STRING").inputs["x"].item() == "café".encode()


@pytest.mark.parametrize(
    ("text", "padding_ok"),
    [("aGk=", True), ("aGk", True), ("aG k=", True), ("aGk.", True), ("aGk==", False), ("a", False), ("aGk-", False)],
)
def test_base64_decoding_follows_absl(text: str, padding_ok: bool) -> None:
    body = f'{{"inputs": {{"b64": "{text}"}}}}'
    if padding_ok:
        assert decode(body, x="DT_STRING").inputs["x"].item() == b"hi"
    else:
        assert message(body, x="DT_STRING") == "Unable to base64 decode"


# --- Predict request errors ----------------------------------------------------------------------------

DOC_SIG5 = '{"signature_name": 5, "instances": [[1,2]]}'


@pytest.mark.parametrize(
    ("body", "inputs", "expected"),
    [
        (
            DOC_SIG5,
            {"default": "DT_INT32"},
            'JSON Value: {\n    "signature_name": 5,\n    "instances": [\n        [\n            1,\n            2\n        ]\n    ]\n}'
            " not formatted correctly. 'signature_name' key must be a string value.",
        ),
        (
            '{"instances": [1], "inputs": [1]}',
            {"default": "DT_INT32"},
            'JSON Value: {\n    "instances": [\n        1\n    ],\n    "inputs": [\n        1\n    ]\n}'
            " Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ",
        ),
        (
            '{"instances": 5}',
            {"x": "DT_INT32"},
            "JSON Value: {\n    \"instances\": 5\n} Expecting 'instances' to be an list/array",
        ),
        (
            '{"instances": []}',
            {"x": "DT_INT32"},
            "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array",
        ),
        ('{"signature_name": "s"}', {"x": "DT_INT32"}, "Missing 'inputs' or 'instances' key"),
        ('{"instances": [[1,2],[3,4],[5,6,7]]}', {"x": "DT_INT32"}, wrapped(2, "Expecting tensor size: 2 but got: 3")),
        ('{"instances": [[1,2],[3,4],[[5,6]]]}', {"x": "DT_INT32"}, wrapped(2, "Expecting shape [2] but got: [1,2]")),
        ('{"instances": [1, [1]]}', {"x": "DT_INT32"}, wrapped(1, "Expecting shape [] but got: [1]")),
        (
            '{"instances": [[1,2],["a", "b"]]}',
            {"x": "DT_INT32"},
            wrapped(1, 'JSON Value: "a" Type: String is not of expected type: int32'),
        ),
        (
            '{"instances": [1.5]}',
            {"x": "DT_INT32"},
            wrapped(0, "JSON Value: 1.5 Type: Number is not of expected type: int32"),
        ),
        ('{"inputs": [1, 2.5]}', {"x": "DT_INT64"}, "JSON Value: 2.5 Type: Number is not of expected type: int64"),
        ('{"inputs": [1e-7]}', {"x": "DT_INT32"}, "JSON Value: 1e-07 Type: Number is not of expected type: int32"),
        ('{"inputs": [1e300]}', {"x": "DT_INT32"}, "JSON Value: 1e+300 Type: Number is not of expected type: int32"),
        (
            '{"inputs": [2147483648]}',
            {"x": "DT_INT32"},
            "JSON Value: 2147483648 Type: Number is not of expected type: int32",
        ),
        ('{"inputs": [-1]}', {"x": "DT_UINT32"}, "JSON Value: -1 Type: Number is not of expected type: uint32"),
        ('{"inputs": [1.0, true]}', {"x": "DT_FLOAT"}, "JSON Value: true Type: True is not of expected type: float"),
        ('{"inputs": [0, false]}', {"x": "DT_INT32"}, "JSON Value: false Type: False is not of expected type: int32"),
        ('{"inputs": [null]}', {"x": "DT_FLOAT"}, "JSON Value: null Type: Null is not of expected type: float"),
        ('{"inputs": [1]}', {"x": "DT_BOOL"}, "JSON Value: 1 Type: Number is not of expected type: bool"),
        ('{"inputs": [1]}', {"x": "DT_STRING"}, "JSON Value: 1 Type: Number is not of expected type: string"),
        (
            '{"inputs": {"b64": "aGk="}}',
            {"x": "DT_FLOAT"},
            'JSON Value: {\n    "b64": "aGk="\n} Type: Object is not of expected type: float',
        ),
        (
            '{"inputs": [{"b64": "aGk=", "x": 1}]}',
            {"x": "DT_STRING"},
            'JSON Value: {\n    "b64": "aGk=",\n    "x": 1\n} not formatted correctly for base64 data',
        ),
        (
            '{"inputs": [[1], 2]}',
            {"x": "DT_INT32"},
            "JSON Value: 2 found at incorrect level: 2 in the JSON DOM. Expected at level: 2",
        ),
        ('{"inputs": [1, [2]]}', {"x": "DT_INT32"}, "Encountered list at unexpected level: 1 expected < 1"),
        (
            '{"inputs": [[1, 2], [3]]}',
            {"x": "DT_INT32"},
            "Encountered list at unexpected size: 1 at level: 1 expected size: 2",
        ),
        ('{"inputs": {"a": [1]}}', {"a": "DT_INT32", "b": "DT_INT32"}, "Missing named input: b in 'inputs' object."),
        (
            '{"inputs": [1]}',
            {"a": "DT_INT32", "b": "DT_INT32"},
            "inputs is a plain value/list, but expecting an object as multiple input tensors required as per tensorinfo_map",
        ),
        (
            '{"instances": [[1]]}',
            {"a": "DT_INT32", "b": "DT_INT32"},
            "instances is a plain list, but expecting list of objects as multiple input tensors required as per tensorinfo_map",
        ),
        (
            '{"instances": [{"a": 1, "c": 2}]}',
            {"a": "DT_INT32"},
            wrapped(0, "JSON object: does not have named input: c", key="c"),
        ),
        (
            '{"instances": [{"b": 1}]}',
            {"b": "DT_INT32", "a": "DT_INT32"},
            "Failed to process element: 0 of 'instances' list. JSON object: {\n    \"b\": 1\n} keys must be equal to: a,b",
        ),
        (
            '{"instances": [NaN], "inputs": [1]}',
            {"x": "DT_FLOAT"},
            # rapidjson's Writer refuses a nested NaN, so the dump stops right there.
            "JSON Value: {\n    \"instances\": [\n         Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ",
        ),
    ],
)
def test_request_errors_carry_tf_servings_messages(body: str, inputs: dict[str, str], expected: str) -> None:
    failure = error(body, **inputs)
    assert failure.code == ErrorCode.INVALID_ARGUMENT
    assert failure.message == expected


def test_multiple_named_tensor_errors() -> None:
    two = {"int_tensor": "DT_INT32", "str_tensor": "DT_STRING"}
    rows = '{"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"]}'
    assert message(
        f'{{"instances": [{rows}, {{"int_tensor": [[[7,8],[9,0],[1,2]]], "str_tensor": ["baz", "bat"]}}]}}', **two
    ) == wrapped(1, "Expecting shape [3,2] but got: [1,3,2]", key="int_tensor")
    assert message(
        '{"instances": [{"int_tensor": [[1,2],[3,4],[5,6],[7,8]], "str_tensor": ["foo", "bar"]},'
        ' {"int_tensor": [[7,8],[9,0],[1,2]], "str_tensor": ["baz", "bat"]}]}',
        **two,
    ) == wrapped(1, "Expecting tensor size: 8 but got: 6", key="int_tensor")
    assert (
        message(f'{{"instances": [{rows}, [1, 20, 30]]}}', **two)
        == "Expecting object but got list at item 1 of input list"
    )
    assert (
        message('{"instances": [["baz", "bar"], {"str_tensor": ["baz", "bat"]}]}', str_tensor="DT_STRING")
        == "Expecting value/list but got object at item 1 of input list"
    )


def test_signature_without_inputs_and_unimplemented_types() -> None:
    assert message('{"instances": [1]}') == "Failed to get input map for signature: DEFAULT"
    assert message('{"signature_name": "sig", "instances": [1]}') == "Failed to get input map for signature: sig"
    row = error('{"instances": [1.5]}', x="DT_HALF")
    assert row.code == ErrorCode.INVALID_ARGUMENT
    assert (
        row.message
        == "Failed to process element: 0 of 'instances' list. Error: UNIMPLEMENTED: Conversion of JSON Value: 1.5 to type: half"
    )
    column = error('{"inputs": 1.5}', x="DT_HALF")
    assert (column.code, column.message) == (ErrorCode.UNIMPLEMENTED, "Conversion of JSON Value: 1.5 to type: half")


def test_booleans_hidden_among_numbers_are_found_without_the_text() -> None:
    # A plain dict has no text to scan: the exact path decides.
    doc = {"inputs": [1.0, True]}
    with pytest.raises(TfServeError, match="JSON Value: true Type: True is not of expected type: float"):
        codec.decode_predict_inputs(doc, sig(x="DT_FLOAT"))
    assert codec.decode_predict_inputs({"inputs": [1.0, 0]}, sig(x="DT_FLOAT")).inputs["x"].tolist() == [1.0, 0.0]


# --- Predict responses: byte-exact ----------------------------------------------------------------------


def test_half_plus_two_prediction_is_tf_servings_text() -> None:
    body = codec.encode_predict_response({"y": np.array([2.5, 3.0, 4.5], np.float32)}, row_format=True)
    assert body == b'{\n    "predictions": [2.5, 3.0, 4.5\n    ]\n}'


def test_single_tensor_row_and_columnar_layout() -> None:
    tensor = {"int_tensor": np.array([[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]], np.int32)}
    assert codec.encode_predict_response(tensor, True) == (
        b'{\n    "predictions": [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]\n    ]\n}'
    )
    columnar = codec.encode_predict_response(tensor, False)
    assert orjson.loads(columnar) == {"outputs": [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]]}
    assert codec.encode_predict_response({"t": np.array([[1, 2]], np.int64)}, False) == (
        b'{\n    "outputs": [\n        [\n            1,\n            2\n        ]\n    ]\n}'
    )
    assert codec.encode_predict_response({"t": np.array([1, 2, 3, 4, 5], np.int32)}, True) == (
        b'{\n    "predictions": [1, 2, 3, 4, 5\n    ]\n}'
    )
    assert codec.encode_predict_response({"t": np.float32(2.5)}, False) == b'{\n    "outputs": 2.5\n}'


def test_bytes_outputs_are_b64_objects_written_by_prettywriter() -> None:
    strings = np.array([[b"hello", b"world"], [b"tf", b"serving"]], dtype=object)
    row = codec.encode_predict_response({"str_tensor_bytes": strings}, True)
    assert row == (
        b'{\n    "predictions": [[{\n                "b64": "aGVsbG8="\n            }, {\n                "b64": "d29ybGQ="\n'
        b'            }], [{\n                "b64": "dGY="\n            }, {\n                "b64": "c2VydmluZw=="\n            }]\n    ]\n}'
    )
    assert orjson.loads(row) == {
        "predictions": [[{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}], [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}]]
    }
    several = {"a": np.array([1], np.int32), "s_bytes": np.array([b"x"], dtype=object)}
    assert codec.encode_predict_response(several, True) == (
        b'{\n    "predictions": [\n        {\n            "a": 1,\n            "s_bytes": {\n'
        b'                "b64": "eA=="\n            }\n        }\n    ]\n}'
    )
    scalar = {"x_bytes": np.array(b"hi", dtype=object)}
    assert codec.encode_predict_response(scalar, False) == b'{\n    "outputs": {\n        "b64": "aGk="\n    }\n}'
    assert codec.encode_predict_response({"s": np.array(['a"b\\c\n\x01/é'])}, True) == (
        '{\n    "predictions": ["a\\"b\\\\c\\n\\u0001/é"\n    ]\n}'.encode()
    )


def test_floats_print_like_write_decimal() -> None:
    six = np.array([[9000000, 999999, 0.5], [0.0003, 0.00003, 555557.5]], np.float32)
    assert codec.encode_predict_response({"float_tensor": six}, True) == (
        b'{\n    "predictions": [[9e+06, 999999.0, 0.5], [0.0003, 3e-05, 555557.5]\n    ]\n}'
    )
    special = np.array([[np.nan, np.inf], [3, -np.inf]], np.float32)
    assert codec.encode_predict_response({"f": special}, True) == (
        b'{\n    "predictions": [[NaN, Infinity], [3.0, -Infinity]\n    ]\n}'
    )
    assert [float_token(float(np.float32(v)), single=True) for v in (0.1, 1 / 3, 1111111.0 / 2, 16777217.0)] == [
        "0.1",
        "0.333333343",
        "555555.5",
        "16777216.0",
    ]
    assert [float_token(v, single=False) for v in (0.1, 1 / 3, -0.0, 1e300)] == [
        "0.1",
        "0.33333333333333331",
        "-0.0",
        "1e+300",
    ]


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(st.sampled_from([np.float32, np.float64]), hnp.array_shapes(max_dims=2, max_side=40)))
def test_vectorized_floats_match_write_decimal(values: np.ndarray) -> None:
    single = values.dtype == np.float32
    expected = [float_token(v, single=single).encode() for v in values.astype(np.float64).ravel().tolist()]
    assert float_tokens(values) == expected


def test_multiple_named_outputs() -> None:
    tensors = {
        "double_scalar_tensor": np.array([8.0, 9.0]),
        "float_tensor": np.array([[1.0], [2.0]], np.float32),
        "int_tensor": np.array([[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]], np.int32),
        "str_tensor": np.array([[b"foo", b"bar"], [b"baz", b"bat"]], dtype=object),
        "str_tensor_bytes": np.array([[b"hello", b"world"], [b"tf", b"serving"]], dtype=object),
    }
    # The JSON json_tensor_test.cc expects (compared as parsed JSON there).
    assert json.loads(codec.encode_predict_response(tensors, True)) == {
        "predictions": [
            {
                "double_scalar_tensor": 8.0,
                "float_tensor": [1.0],
                "int_tensor": [[1, 2], [3, 4], [5, 6]],
                "str_tensor": ["foo", "bar"],
                "str_tensor_bytes": [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}],
            },
            {
                "double_scalar_tensor": 9.0,
                "float_tensor": [2.0],
                "int_tensor": [[7, 8], [9, 0], [1, 2]],
                "str_tensor": ["baz", "bat"],
                "str_tensor_bytes": [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}],
            },
        ]
    }
    assert json.loads(codec.encode_predict_response(tensors, False)) == {
        "outputs": {
            "double_scalar_tensor": [8.0, 9.0],
            "float_tensor": [[1.0], [2.0]],
            "int_tensor": [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]],
            "str_tensor": [["foo", "bar"], ["baz", "bat"]],
            "str_tensor_bytes": [
                [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}],
                [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}],
            ],
        }
    }
    small = {"a": np.array([1, 2], np.int64), "b": np.array([[True], [False]])}
    assert codec.encode_predict_response(small, True) == (
        b'{\n    "predictions": [\n        {\n            "a": 1,\n            "b": [true]\n        },\n'
        b'        {\n            "a": 2,\n            "b": [false]\n        }\n    ]\n}'
    )
    assert codec.encode_predict_response(small, False) == (
        b'{\n    "outputs": {\n        "a": [\n            1,\n            2\n        ],\n        "b": [\n'
        b"            [\n                true\n            ],\n            [\n                false\n            ]\n"
        b"        ]\n    }\n}"
    )


def test_zero_batch_outputs() -> None:
    empty = {"str_tensor": np.empty((0, 1, 2), dtype=object), "float_tensor": np.empty((0, 3, 4), np.float32)}
    assert codec.encode_predict_response(empty, True) == b'{\n    "predictions": []\n}'
    assert (
        codec.encode_predict_response({"int_tensor": np.empty((0, 2), np.int32)}, True)
        == b'{\n    "predictions": []\n}'
    )
    # Nothing is written, so even a type TF Serving cannot write passes.
    assert codec.encode_predict_response({"c": np.empty((0,), np.complex64)}, True) == b'{\n    "predictions": []\n}'


@pytest.mark.parametrize(
    ("outputs", "row", "expected"),
    [
        ({}, True, "Cannot convert empty tensor map to JSON"),
        ({"tensor": np.array([1.0, 2.0], np.complex64)}, True, "Failed to write JSON value for tensor type: complex64"),
        ({"tensor": np.array([1.0], np.float16)}, False, "Failed to write JSON value for tensor type: half"),
        ({"tensor": np.int32(1)}, True, "Tensor name: tensor has no shape information "),
        (
            {
                "int_tensor": np.zeros((2, 3), np.int32),
                "str_tensor": np.array([[b"foo", b"bar", b"baz"]], dtype=object),
            },
            True,
            "Tensor name: str_tensor has inconsistent batch size: 1 expecting: 2",
        ),
        (
            {"int_tensor": np.zeros((0, 2), np.int32), "str_tensor": np.array([[b"foo", b"bar"]], dtype=object)},
            True,
            "Tensor name: str_tensor has inconsistent batch size: 1 expecting: 0",
        ),
    ],
)
def test_response_errors(outputs: dict[str, Any], row: bool, expected: str) -> None:
    with pytest.raises(TfServeError) as info:
        codec.encode_predict_response(outputs, row)
    assert (info.value.code, info.value.message) == (ErrorCode.INVALID_ARGUMENT, expected)


# --- Round trips ----------------------------------------------------------------------------------------

_BATCHED = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def _as_request(response: bytes, row: bool) -> bytes:
    old, new = (b'"predictions"', b'"instances"') if row else (b'"outputs"', b'"inputs"')
    return response.replace(old, new, 1)


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(
        [(np.float32, "DT_FLOAT"), (np.float64, "DT_DOUBLE"), (np.int64, "DT_INT64"), (np.int32, "DT_INT32")]
    ),
    _BATCHED,
    st.booleans(),
    st.data(),
)
def test_numeric_round_trip(kind: tuple[type, str], shape: tuple[int, ...], row: bool, data: st.DataObject) -> None:
    dtype, dt = kind
    array = data.draw(hnp.arrays(dtype, shape))
    body = decode(_as_request(codec.encode_predict_response({"y": array}, row), row), y=dt)
    assert body.inputs["y"].dtype == array.dtype
    np.testing.assert_array_equal(body.inputs["y"], array)


@settings(max_examples=30, deadline=None)
@given(
    _BATCHED,
    st.lists(st.text(), min_size=64, max_size=64),
    st.lists(st.binary(), min_size=64, max_size=64),
    st.booleans(),
)
def test_string_and_b64_round_trip(shape: tuple[int, ...], texts: list[str], blobs: list[bytes], row: bool) -> None:
    size = math.prod(shape)
    text = np.array([t.encode() for t in texts[:size]], dtype=object).reshape(shape)
    blob = np.array(blobs[:size], dtype=object).reshape(shape)
    outputs = {"text": text, "blob_bytes": blob}
    body = decode(
        _as_request(codec.encode_predict_response(outputs, row), row), text="DT_STRING", blob_bytes="DT_STRING"
    )
    assert body.inputs["text"].tolist() == text.tolist()
    assert body.inputs["blob_bytes"].tolist() == blob.tolist()


# --- Classify, regress, errors ---------------------------------------------------------------------------


def test_classification_results() -> None:
    classes = np.array([[b"car", b"bike", b"bus"], [b"car", b"bike", b"bus"]], dtype=object)
    scores = np.array([[0.2, 0.7, 0.1], [0.7, 0.1, 0.2]], np.float32)
    assert codec.encode_classify_response(classes, scores) == (
        b'{\n    "results": [[["car", 0.2], ["bike", 0.7], ["bus", 0.1]], [["car", 0.7], ["bike", 0.1], ["bus", 0.2]]\n    ]\n}'
    )
    assert (
        codec.encode_classify_response(None, np.array([[2.5]], np.float32))
        == b'{\n    "results": [[["", 2.5]]\n    ]\n}'
    )
    assert codec.encode_classify_response(np.array([["a"]]), None) == b'{\n    "results": [[["a", 0.0]]\n    ]\n}'
    with pytest.raises(TfServeError, match="Cannot convert empty ClassificationResults to JSON"):
        codec.encode_classify_response(None, np.empty((0, 1), np.float32))


def test_regression_results() -> None:
    assert (
        codec.encode_regress_response(np.array([0.2, 0.9, 1.0], np.float32)) == b'{\n    "results": [0.2, 0.9, 1.0]\n}'
    )
    nonfinite = np.array([[0.2], [np.inf], [1.0], [-np.inf], [np.nan]], np.float32)
    assert codec.encode_regress_response(nonfinite) == b'{\n    "results": [0.2, Infinity, 1.0, -Infinity, NaN]\n}'
    with pytest.raises(TfServeError, match="Cannot convert empty RegressionResults to JSON"):
        codec.encode_regress_response(np.empty((0,), np.float32))


def test_error_body_escaping() -> None:
    assert codec.encode_error("Servable not found for request: Latest(x)") == (
        b'{\n    "error": "Servable not found for request: Latest(x)"\n}'
    )
    assert codec.encode_error('a "b" \\ /\n\t\x1f é') == '{\n    "error": "a \\"b\\" \\\\ /\\n\\t\\u001F é"\n}'.encode()


def test_value_to_string_prints_nested_doubles_like_rapidjson() -> None:
    assert value_to_string({"a": [0.1, 1e21, 1e-7, 100.0, 1.5e300, -0.0, 123456789012.0]}) == (
        '{\n    "a": [\n        0.1,\n        1e21,\n        1e-7,\n        100.0,\n        1.5e300,\n        -0.0,\n'
        "        123456789012.0\n    ]\n}"
    )
    assert value_to_string(3.14159274) == "3.14159274"
    assert value_to_string(True) == "true"


# --- Model status and metadata ---------------------------------------------------------------------------


def test_model_status_json() -> None:
    statuses = [
        VersionStatus(123, VersionState.AVAILABLE),
        VersionStatus(124, VersionState.END, ErrorCode.UNKNOWN, 'Could not load "x" <y>'),
    ]
    assert codec.encode_model_status(statuses) == (
        b'{\n "model_version_status": [\n  {\n   "version": "123",\n   "state": "AVAILABLE",\n   "status": {\n'
        b'    "error_code": "OK",\n    "error_message": ""\n   }\n  },\n  {\n   "version": "124",\n   "state": "END",\n'
        b'   "status": {\n    "error_code": "UNKNOWN",\n    "error_message": "Could not load \\"x\\" \\u003cy\\u003e"\n'
        b"   }\n  }\n ]\n}\n"
    )


def _signatures_from(metadata: dict[str, Any]) -> dict[str, SignatureInfo]:
    def tensor(info: dict[str, Any]) -> TensorInfo:
        shape = info["tensor_shape"]
        dims = tuple(Dim(int(d["size"]), d["name"]) for d in shape["dim"])
        return TensorInfo(info["name"], info["dtype"], dims, shape["unknown_rank"])

    return {
        key: SignatureInfo(
            value["method_name"],
            {alias: tensor(info) for alias, info in value["inputs"].items()},
            {alias: tensor(info) for alias, info in value["outputs"].items()},
        )
        for key, value in metadata["metadata"]["signature_def"]["signature_def"].items()
    }


@pytest.mark.parametrize(
    "name", ["half_plus_two_model_metadata.json", "saved_model_half_plus_two_tf2_2_versions_metadata.json"]
)
def test_model_metadata_matches_tf_servings_testdata(name: str, testdata: Path) -> None:
    expected = json.loads((testdata / name).read_text())
    spec = expected["model_spec"]
    body = codec.encode_model_metadata(spec["name"], int(spec["version"]), _signatures_from(expected))
    for signature in expected["metadata"]["signature_def"]["signature_def"].values():
        signature.setdefault("defaults", {})  # see encode_model_metadata: the TF2 file was hand-edited
    # Same fields in the same order (dumps keeps order), not only equal dicts.
    assert json.dumps(json.loads(body)) == json.dumps(expected)
    assert body.startswith(
        b'{\n"model_spec":{\n "name": "'
        + spec["name"].encode()
        + b'",\n "signature_name": "",\n "version": "123"\n}\n,\n"metadata": {"signature_def": {\n "signature_def": {\n  "'
    )
    assert body.endswith(b"\n }\n}\n}\n}\n")


# --- Classify/regress requests (tf.Example) --------------------------------------------------------------


def _examples(body: str) -> tuple[str, list[Any]]:
    from tensorflow.core.example import example_pb2

    decoded = codec.decode_examples_request(parse_json_body(body.encode()))
    return decoded.signature_name, [example_pb2.Example.FromString(raw) for raw in decoded.examples]


def _features(example: Any) -> dict[str, tuple[str, list[Any]]]:
    out = {}
    for key, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        out[key] = (kind, list(getattr(feature, kind).value) if kind else [])
    return out


def test_examples_without_context() -> None:
    name, examples = _examples(
        '{"examples": [{"names": [ "foo", "bar" ], "ratings": [ 8.0, 9.0 ], "age": 20}, {"names": [ "baz" ], "ratings": 6.0}]}'
    )
    assert name == ""
    assert [_features(e) for e in examples] == [
        {"names": ("bytes_list", [b"foo", b"bar"]), "ratings": ("float_list", [8.0, 9.0]), "age": ("int64_list", [20])},
        {"names": ("bytes_list", [b"baz"]), "ratings": ("float_list", [6.0])},
    ]


def test_examples_with_context_merge_like_tf_serving() -> None:
    name, examples = _examples(
        """{"signature_name": "custom_signture",
        "context": {"query": "pizza", "location": [ "sfo" ], "names": "context-loses"},
        "examples": [
          {"names": [ "foo", "bar" ], "ratings": [ 8.0, 9.0, NaN, Infinity ], "age": 20},
          {"names": [ "baz", { "b64": "aGVsbG8=" } ], "ratings": 6.0, "intboolmix": [ 1, true, false ], "empty": []},
          {"names": "bar", "ratings": -Infinity, "big": 1e300}
        ]}"""
    )
    assert name == "custom_signture"
    first, second, third = (_features(e) for e in examples)
    assert first["query"] == ("bytes_list", [b"pizza"])
    assert first["location"] == ("bytes_list", [b"sfo"])
    assert first["names"] == ("bytes_list", [b"foo", b"bar"])  # the example's own feature wins
    assert str(first["ratings"][1]) == "[8.0, 9.0, nan, inf]"
    assert second["names"] == ("bytes_list", [b"baz", b"hello"])
    assert second["intboolmix"] == ("int64_list", [1, 1, 0])
    assert second["empty"] == (None, [])
    assert third["ratings"] == ("float_list", [-math.inf])
    assert third["big"] == ("float_list", [math.inf])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"context": [ { "names": [ "foo", "bar" ] } ]}', "Example must be JSON object but got JSON Array"),
        (
            '{"examples": { "names": "foo" }}',
            'JSON Value: {\n    "examples": {\n        "names": "foo"\n    }\n} Expecting \'examples\' value to be an list/array',
        ),
        ('{"examples": [ [ { "names": [ "foo", "bar" ] } ] ]}', "Example must be JSON object but got JSON Array"),
        ('{"examples": [ { "names": [ 10, null ] } ]}', "Feature: names has element with unexpected JSON type: Null"),
        (
            '{"examples": [ { "names": [ 10, 10.0 ] } ]}',
            "Unexpected element type in feature: names expecting type: int64",
        ),
        (
            '{"examples": [ { "names": [ 1.5, "a" ] } ]}',
            "Unexpected element type in feature: names expecting type: float",
        ),
        (
            '{"examples": [ { "names": [ 10, { "test": 10 } ] } ]}',
            "Feature: names has element with unexpected JSON type: Object",
        ),
        ('{"examples": [ { "names": [ [10], 20 ] } ]}', "Feature: names has element with unexpected JSON type: Array"),
        (
            '{"examples": [ { "names": [ 20, 18446744073709551603 ] } ]}',
            "Feature: names has uint64_t element. Only int64_t is supported.",
        ),
        ('{"examples": [ { "names": { "b64": "!" } } ]}', "Unable to base64 decode"),
        (
            '{"context": {}}',
            "JSON Value: {\n    \"context\": {}\n} When method is classify, key 'examples' is expected and was not found",
        ),
        ('{"examples": []}', "JSON Value: {\n    \"examples\": []\n} 'examples' value is an empty array"),
        (
            '{"signature_name": [ "hello" ], "examples": [ {} ]}',
            'JSON Value: {\n    "signature_name": [\n        "hello"\n    ],\n    "examples": [\n        {}\n    ]\n}'
            " not formatted correctly. 'signature_name' key must be a string value.",
        ),
    ],
)
def test_example_errors(body: str, expected: str) -> None:
    with pytest.raises(TfServeError) as info:
        codec.decode_examples_request(parse_json_body(body.encode()))
    assert (info.value.code, info.value.message) == (ErrorCode.INVALID_ARGUMENT, expected)
