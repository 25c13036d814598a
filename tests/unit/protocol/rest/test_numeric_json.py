"""The numeric JSON reader: wide float bodies skip Python floats, and it never changes an outcome."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tfserve_lab.core.types import SignatureInfo, TensorInfo
from tfserve_lab.errors import TfServeError
from tfserve_lab.protocol.rest import codec, numeric_json
from tfserve_lab.protocol.rest.jsonparse import parse_json_body

PAD = b" " * 600  # past the reader's size threshold; trailing spaces change nothing in JSON


def sig(**inputs: str) -> SignatureInfo:
    return SignatureInfo(
        "tensorflow/serving/predict", {name: TensorInfo(f"{name}:0", dtype) for name, dtype in inputs.items()}, {}
    )


def exact(body: bytes, signature: SignatureInfo) -> codec.PredictBody | TfServeError:
    """The rule-by-rule path alone."""
    try:
        return codec.decode_predict_inputs(parse_json_body(body), signature)
    except TfServeError as failure:
        return failure


def served(body: bytes, signature: SignatureInfo) -> codec.PredictBody | TfServeError:
    """What the REST handler decodes (numeric reader first)."""
    try:
        return codec.decode_predict_request(body, signature)
    except TfServeError as failure:
        return failure


def assert_same(left: codec.PredictBody | TfServeError, right: codec.PredictBody | TfServeError) -> None:
    if isinstance(left, TfServeError):
        assert isinstance(right, TfServeError), right
        assert (right.code, right.message) == (left.code, left.message)
        return
    assert isinstance(right, codec.PredictBody), right
    assert (right.signature_name, right.row_format) == (left.signature_name, left.row_format)
    assert right.inputs.keys() == left.inputs.keys()
    for name, array in left.inputs.items():
        assert right.inputs[name].dtype == array.dtype
        np.testing.assert_array_equal(right.inputs[name], array)


def test_wide_float_instances_take_the_numeric_path() -> None:
    rows = np.random.default_rng(3).random((32, 784), dtype=np.float32)
    body = orjson.dumps({"instances": rows}, option=orjson.OPT_SERIALIZE_NUMPY)
    numeric = numeric_json.parse_numeric_body(body)
    assert numeric is not None
    assert numeric.unnamed is not None
    assert numeric.unnamed.shape == (32, 784)
    assert numeric.row_format
    decoded = codec.decode_predict_request(body, sig(x="DT_FLOAT"))
    assert decoded.inputs["x"].dtype == np.float32
    np.testing.assert_array_equal(decoded.inputs["x"], rows)  # float32 text reads back to the same float32


def test_named_columns_and_signature_name() -> None:
    body = orjson.dumps({"signature_name": "odd[name", "inputs": {"a": [[1.5, 2], [3, 4]], "b": [0.25] * 200}})
    numeric = numeric_json.parse_numeric_body(body)
    assert numeric is not None
    assert numeric.named.keys() == {"a", "b"}
    decoded = codec.decode_predict_request(body, sig(a="DT_DOUBLE", b="DT_FLOAT"))
    assert decoded.signature_name == "odd[name"
    assert not decoded.row_format
    np.testing.assert_array_equal(decoded.inputs["a"], np.array([[1.5, 2], [3, 4]]))
    assert decoded.inputs["a"].dtype == np.float64
    assert decoded.inputs["b"].shape == (200,)


@pytest.mark.parametrize(
    "doc",
    [
        pytest.param('{"instances": [[1, 2], [3, 4, 5]]}', id="ragged"),
        pytest.param('{"instances": [[1, [2]], [3, 4]]}', id="array-for-a-number"),
        pytest.param('{"instances": [[[1, 2], [3, 4]], [[5, 6, 7], [8]]]}', id="same-counts-not-rectangular"),
        pytest.param('{"instances": [[1, true], [3, 4]]}', id="bool"),
        pytest.param('{"instances": [[1, null], [3, 4]]}', id="null"),
        pytest.param('{"instances": [[1, "2"], [3, 4]]}', id="string"),
        pytest.param('{"instances": [{"b64": "AAAA"}]}', id="b64"),
        pytest.param('{"instances": [[1, 2]], "instances": [[3, 4]]}', id="duplicate-key"),
        pytest.param('{"instances": [[1, 2]], "other": 1}', id="extra-key"),
        pytest.param('{"instances": [[1, 2]], "inputs": [[3, 4]]}', id="both-formats"),
        pytest.param('{"instances": []}', id="empty"),
        pytest.param('{"instances": [[], []]}', id="empty-rows"),
        pytest.param('{"signature_name": 5, "instances": [[1, 2]]}', id="signature-name-not-a-string"),
        pytest.param('{"instances": [[1, 2]]} x', id="trailing-text"),
        pytest.param('{"instances": [[1e400, 2]]}', id="overflow"),
        pytest.param('{"instances": [[NaN, 2]]}', id="nan"),
        pytest.param('\ufeff{"instances": [[1, 2]]}', id="bom"),
    ],
)
def test_declines_what_only_the_exact_path_can_judge(doc: str) -> None:
    body = doc.encode() + PAD
    assert numeric_json.parse_numeric_body(body) is None
    signature = sig(x="DT_FLOAT")
    assert_same(exact(body, signature), served(body, signature))


def test_non_float_signatures_decode_exactly() -> None:
    body = b'{"instances": [[1, 2], [3, 4]]}' + PAD
    assert numeric_json.parse_numeric_body(body) is not None  # plain numbers, but the dtype decides
    for dtype in ("DT_INT32", "DT_INT64", "DT_BOOL", "DT_STRING"):
        signature = sig(x=dtype)
        assert_same(exact(body, signature), served(body, signature))
    two = sig(x="DT_FLOAT", y="DT_FLOAT")
    assert_same(exact(body, two), served(body, two))  # a plain list for two inputs: TF Serving's error


def test_a_live_parse_does_not_block_the_next() -> None:
    body = b'{"instances": [[1, 2], [3, 4]]}' + PAD
    held = numeric_json._parse(body)  # proxies into the thread's parser stay alive
    numeric = numeric_json.parse_numeric_body(body)
    assert numeric is not None
    assert numeric.unnamed is not None
    assert numeric.unnamed.shape == (2, 2)
    del held


_leaves = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**60), 2**60),
    st.booleans(),
)
_nested = st.recursive(_leaves, lambda inner: st.lists(inner, min_size=1, max_size=4), max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(_nested, st.sampled_from(["instances", "inputs"]), st.sampled_from(["DT_FLOAT", "DT_DOUBLE", "DT_INT64"]))
def test_any_nesting_decodes_as_the_exact_path(value: Any, key: str, dtype: str) -> None:
    body = orjson.dumps({key: value}) + PAD
    signature = sig(x=dtype)
    assert_same(exact(body, signature), served(body, signature))


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=4, max_side=6), elements=st.floats(-1e30, 1e30)))
def test_rectangular_floats_are_read_without_the_exact_path(array: np.ndarray) -> None:
    body = orjson.dumps({"instances": array.tolist()}) + PAD
    numeric = numeric_json.parse_numeric_body(body)
    checks = sum(int(np.prod(array.shape[:depth])) for depth in range(1, array.ndim))
    if checks <= 16 or checks * 8 <= array.size:
        assert numeric is not None
        assert numeric.unnamed is not None
        np.testing.assert_array_equal(numeric.unnamed, array)
    signature = sig(x="DT_FLOAT")
    assert_same(exact(body, signature), served(body, signature))
