"""Every REST predict decode tier gives the same arrays, or the same error, for the same body and signature.

The tiers, each called on its own:

- parsing (``jsonparse``): orjson, the stdlib parser with rapidjson's checks,
  and the rapidjson-compatible reader that words every parse error;
- ``numeric_json``: wide bodies of plain floats read by simdjson;
- ``codec``'s vectorized path (numpy over the parsed lists) and its
  rule-by-rule path, ``json_tensor.cc`` rule for rule: the reference;
- ``PredictText``, which chains them as the REST handler does.

A tier that declines a body (a faster reader leaving it to the next) is
skipped for that body; the chain's answer must still be the reference's.
"""

from __future__ import annotations

import base64
import json
import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tfserve_lab.core.types import SignatureInfo, TensorInfo
from tfserve_lab.errors import TfServeError
from tfserve_lab.protocol.rest import codec, jsonparse, numeric_json, rapidjson_reader

_NAMES = ("x", "y", "b64")
_DTYPES = (
    "DT_FLOAT",
    "DT_DOUBLE",
    "DT_INT32",
    "DT_INT64",
    "DT_BOOL",
    "DT_STRING",
    "DT_UINT8",
    "DT_UINT64",
    "DT_HALF",
)
_NUMERIC_MIN_BODY = 600  # past numeric_json's size threshold; trailing spaces change nothing in JSON

Outcome = Any  # a value (parsed JSON, PredictBody) or the TfServeError raised instead
_DECLINED = object()


class Raw(str):
    """A JSON token written as is: numbers in any spelling, NaN and Infinity, broken text."""


# ---------------------------------------------------------------------------------------------------------------
# Bodies


def to_json(value: Any) -> str:
    if isinstance(value, Raw):
        return value
    if isinstance(value, (str, int, float)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(to_json(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(key)}: {to_json(item)}" for key, item in value.items()) + "}"
    raise TypeError(value)


_EDGE_INTS = [
    2**31 - 1,
    2**31,
    -(2**31),
    -(2**31) - 1,
    2**32 - 1,
    2**32,
    2**53 + 1,
    2**60 + 2**36 + 1,  # float32 of the int differs from float32 of its double: rapidjson goes through the double
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    2**64 - 1,
    2**64,
    10**30,
    -(10**30),
]
_FLOAT_SPELLINGS = [
    "-0",
    "-0.0",
    "0.0",
    "1E5",
    "1.5e-3",
    "2.5E+2",
    "3.4028235e38",
    "3.5e38",
    "1e39",
    "-1e39",
    "1e308",
    "1.7976931348623157e308",
    "1e-50",
    "1e-400",
    "4.9e-324",
    "0.1e309",
    "0.00001e312",
    "1e-0400",
    "1E+0308",
    "-0e-5",
    "123456789012345678901234567890.5",
    "9007199254740993",
    "-9223372036854775808",
    "18446744073709551615",
]
_SPECIALS = ["NaN", "-NaN", "Infinity", "-Infinity", "Inf", "-Inf"]
# Texts rapidjson refuses: every tier must leave them to the reader and its message. Not among them: a zero
# with an exponent past 308 ("0e400"), which rapidjson refuses and orjson and simdjson read as 0.0; spotting
# one in the text costs more than parsing it, so the fast parsers take it as 0.0.
_BROKEN_NUMBERS = ["1e400", "-1e400", "1e309", "nan", "Infinit", "NaX", "01", "1.", "-", "1e", "+1", ".5"]

ints = st.one_of(
    st.integers(-3, 3),
    st.integers(-1000, 1000),
    st.integers(-(2**62), 2**62),
    st.sampled_from(_EDGE_INTS),
    st.integers(-(2**70), 2**70),
).map(lambda i: Raw(str(i)))
floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: Raw(repr(f))),
    st.floats(-1e6, 1e6, width=32).map(lambda f: Raw(repr(f))),
    st.sampled_from(_FLOAT_SPELLINGS).map(Raw),
)
specials = st.sampled_from(_SPECIALS).map(Raw)
bools = st.sampled_from([Raw("true"), Raw("false")])
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=5)
strings = st.one_of(
    texts,
    texts.map(lambda s: Raw(json.dumps(s, ensure_ascii=True))),  # \\u escapes, surrogate pairs included
    st.sampled_from(["1", "true", "[1]", "b64"]),
)
b64_objects = st.one_of(
    st.binary(max_size=6).map(lambda b: {"b64": base64.b64encode(b).decode()}),
    st.sampled_from(
        [
            {"b64": "!!!"},
            {"b64": "A"},
            {"b64": "AAA"},
            {"b64": "AA=="},
            {"b64": "AA"},
            {"b64": " A A = = "},
            {"b64": 5},
            {"b64": "AA==", "x": 1},
        ]
    ),
)
other_leaves = st.sampled_from([Raw("null"), {}, {"a": 1}, {"x": [1.0]}])
any_leaf = st.one_of(ints, floats, specials, bools, strings, b64_objects, other_leaves)
broken = st.sampled_from(_BROKEN_NUMBERS).map(Raw)

_FITTING = {
    "DT_FLOAT": st.one_of(floats, ints),
    "DT_DOUBLE": st.one_of(floats, ints),
    "DT_HALF": st.one_of(floats, ints),
    "DT_BOOL": bools,
    "DT_STRING": st.one_of(strings, b64_objects),
}


def fitting(dtype: str) -> st.SearchStrategy[Any]:
    """Leaves ``AddValueToTensor`` takes for the dtype (integers for the integer types, in range or not)."""
    return _FITTING.get(dtype, ints)


shapes = st.lists(st.integers(0, 3), max_size=4)


@st.composite
def dense(draw: st.DrawFn, shape: list[int], leaves: st.SearchStrategy[Any]) -> Any:
    if not shape:
        return draw(leaves)
    return [draw(dense(shape[1:], leaves)) for _ in range(shape[0])]


def ragged(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(leaves, lambda inner: st.lists(inner, max_size=3), max_leaves=12)


def weighted(**weights: int) -> st.SearchStrategy[str]:
    """One of the names, as often as its weight says (hypothesis favours the first: make it the common case)."""
    return st.sampled_from([name for name, weight in weights.items() for _ in range(weight)])


def now_and_then(one_in: int) -> st.SearchStrategy[bool]:
    return st.sampled_from([False] * (one_in - 1) + [True])


@st.composite
def tensors(draw: st.DrawFn, dtype: str, shape: list[int] | None = None) -> Any:
    """One input's JSON value: dense in ``shape`` (drawn when None), now and then ragged, mixed or broken."""
    leaves = fitting(dtype)
    mix = draw(weighted(fitting=12, specials=3, any=3, broken=1, constant=1))
    if mix == "specials":
        leaves = st.one_of(leaves, specials)
    elif mix == "any":
        leaves = st.one_of(leaves, any_leaf)
    elif mix == "broken":
        leaves = st.one_of(leaves, broken)
    elif mix == "constant":
        leaves = st.just(draw(leaves))  # one value all along
    if draw(now_and_then(10)):
        return draw(ragged(leaves))
    return draw(dense(draw(shapes) if shape is None else shape, leaves))


@st.composite
def signatures(draw: st.DrawFn) -> SignatureInfo:
    """One to three inputs (now and then none), mostly of one dtype, floats more often than not."""
    count = draw(st.sampled_from([1, 1, 1, 1, 2, 2, 3, 0]))
    names = draw(st.permutations(_NAMES))[:count]
    common = draw(st.sampled_from(["DT_FLOAT", "DT_DOUBLE", *_DTYPES]))
    dtypes = st.one_of(st.just(common), st.sampled_from(_DTYPES))
    inputs = {name: TensorInfo(f"{name}:0", draw(dtypes)) for name in names}
    return SignatureInfo("tensorflow/serving/predict", inputs, {})


@st.composite
def documents(draw: st.DrawFn, signature: SignatureInfo) -> dict[str, Any]:
    """A predict body for ``signature``: rows or columns, named or not, now and then with the wrong keys."""
    dtypes = {name: info.dtype for name, info in signature.inputs.items()}
    names = list(dtypes)
    if draw(now_and_then(10)):  # an input too many or too few
        names = draw(st.lists(st.sampled_from([*_NAMES, "z"]), unique=True, max_size=3))
    dtype_of: Callable[[str], str] = lambda name: dtypes.get(name, "DT_FLOAT")  # noqa: E731
    named = len(names) != 1 or draw(now_and_then(3))
    doc: dict[str, Any] = {}
    if draw(now_and_then(6)):
        doc["signature_name"] = draw(st.sampled_from(["serving_default", "", "a[1]", Raw("5"), Raw("null")]))
    if draw(st.booleans()):
        count = draw(st.sampled_from([1, 2, 3, 4, 0] if draw(now_and_then(10)) else [1, 2, 3, 4]))
        row_shapes = {name: draw(shapes) for name in names}
        rows: list[Any]
        if named:
            rows = [{name: draw(tensors(dtype_of(name), row_shapes[name])) for name in names} for _ in range(count)]
        else:
            rows = [draw(tensors(dtype_of(names[0]), row_shapes[names[0]])) for _ in range(count)]
        odd_row = draw(now_and_then(10))
        if rows and odd_row:  # one row of another kind
            rows[draw(st.integers(0, len(rows) - 1))] = draw(st.one_of(tensors("DT_FLOAT"), b64_objects, st.just({})))
        doc["instances"] = rows
    elif named:
        doc["inputs"] = {name: draw(tensors(dtype_of(name))) for name in names}
    else:
        doc["inputs"] = draw(tensors(dtype_of(names[0])))
    wrong = draw(weighted(none=26, both_keys=1, not_a_list=1, no_key=1, extra_key=1))
    if wrong == "both_keys":
        doc["inputs" if "instances" in doc else "instances"] = [Raw("1")]
    elif wrong == "not_a_list":
        key = "instances" if "instances" in doc else "inputs"
        doc[key] = draw(st.sampled_from([Raw("5"), "rows", Raw("null"), {}, Raw("true")]))
    elif wrong == "no_key":
        doc = {"instancez": [Raw("1")]}
    elif wrong == "extra_key":
        doc["extra"] = Raw("1")
    return doc


@st.composite
def bodies(draw: st.DrawFn, signature: SignatureInfo) -> bytes:
    """The text of a drawn document, now and then cut, padded or wrapped the ways rapidjson tolerates or not."""
    text = to_json(draw(documents(signature))).encode("utf-8", "surrogatepass")
    damage = draw(weighted(none=25, cut=1, insert=1, bom=1, nul=1, not_object=1))
    if damage == "cut":
        text = text[: draw(st.integers(1, len(text)))]
    elif damage == "insert":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from([b",", b"]", b"x", b"\x00", b"\xff", b"}"])) + text[at:]
    elif damage == "bom":
        text = b"\xef\xbb\xbf" + text
    elif damage == "nul":
        text = text + b"\x00trailing"  # rapidjson stops at a NUL
    elif damage == "not_object":
        text = draw(st.sampled_from([b"[1, 2]", b"5", b'"text"', b"null", b"  "]))
    if not draw(now_and_then(3)):
        text += b" " * max(0, _NUMERIC_MIN_BODY - len(text))
    return text


# ---------------------------------------------------------------------------------------------------------------
# Comparing outcomes


def attempt(call: Callable[[], Any]) -> Outcome:
    try:
        return call()
    except TfServeError as failure:
        return failure


def assert_same_json(left: Any, right: Any) -> None:
    """Equal JSON values, types included (1 is not 1.0), NaN equal to NaN; iterative for deep documents."""
    pending = [(left, right)]
    while pending:
        a, b = pending.pop()
        assert type(a) is type(b), (a, b)
        if type(a) is float:
            assert (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b)), (a, b)
        elif type(a) is list:
            assert len(a) == len(b)
            pending.extend(zip(a, b, strict=True))
        elif type(a) is dict:
            assert list(a) == list(b)
            pending.extend(zip(a.values(), b.values(), strict=True))
        else:
            assert a == b


def assert_same_arrays(left: np.ndarray, right: np.ndarray) -> None:
    assert (left.dtype, left.shape) == (right.dtype, right.shape)
    if left.dtype == object:
        assert left.tolist() == right.tolist()
    elif left.dtype.kind == "f":
        assert np.array_equal(left, right, equal_nan=True)
        numbers = ~np.isnan(left)
        assert np.array_equal(np.signbit(left[numbers]), np.signbit(right[numbers]))  # -0.0 is not 0.0
    else:
        assert np.array_equal(left, right)


def assert_same(reference: Outcome, other: Outcome) -> None:
    """The same arrays (dtype, shape, values) and format, or the same error (class, code, message)."""
    if isinstance(reference, TfServeError):
        assert isinstance(other, TfServeError), f"expected {reference!r}, got {other!r}"
        assert (type(other), other.code, other.message) == (type(reference), reference.code, reference.message)
        return
    assert isinstance(other, codec.PredictBody), f"expected arrays, got {other!r}"
    assert (other.signature_name, other.row_format) == (reference.signature_name, reference.row_format)
    assert other.inputs.keys() == reference.inputs.keys()
    for name, array in reference.inputs.items():
        assert_same_arrays(array, other.inputs[name])


# ---------------------------------------------------------------------------------------------------------------
# The tiers


def check_parse_tiers(body: bytes) -> None:
    """orjson and the stdlib parser read a text as the rapidjson-compatible reader does, or leave it to it."""
    reader = attempt(lambda: rapidjson_reader.parse_like_rapidjson(body))
    try:
        fast = orjson.loads(body)
    except orjson.JSONDecodeError:
        fast = _DECLINED
    try:
        stdlib = jsonparse.parse_with_stdlib(body)
    except jsonparse.ParseDeclined:
        stdlib = _DECLINED
    for tier in (fast, stdlib):
        if tier is not _DECLINED:
            assert not isinstance(reader, TfServeError), f"accepted what rapidjson refuses: {reader!r}"
            assert_same_json(tier, reader)
    served = attempt(lambda: jsonparse.parse_json_body(body))
    if isinstance(reader, TfServeError):
        assert_same(reader, served)
    elif type(reader) is not dict:
        assert isinstance(served, TfServeError)
        assert served.message.endswith(" Is not object")
    else:
        assert isinstance(served, dict), served
        assert_same_json(dict(served), reader)


def check_decode_tiers(body: bytes, signature: SignatureInfo) -> None:
    """numeric_json, the vectorized path and ``PredictText`` agree with the rule-by-rule path."""
    doc = attempt(lambda: jsonparse.parse_json_body(body))
    if isinstance(doc, TfServeError):
        reference: Outcome = doc
    else:
        reference = attempt(lambda: codec.decode_predict_exactly(doc, signature))
        vectorized = attempt(lambda: codec.decode_predict_vectorized(doc, signature))
        if vectorized is not None:
            assert_same(reference, vectorized)
    numeric = numeric_json.parse_numeric_body(body)
    if numeric is not None:
        assert not isinstance(doc, TfServeError), f"read a body TF Serving refuses: {doc!r}"
        assert numeric.signature_name == jsonparse.signature_name_of(doc)
        inputs = numeric.inputs_for(signature.inputs)
        if inputs is not None:
            assert_same(reference, codec.PredictBody(numeric.signature_name, inputs, numeric.row_format))
    assert_same(reference, attempt(lambda: codec.PredictText(body).decode(signature)))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_tier_decodes_a_body_as_the_rules_do(data: st.DataObject) -> None:
    signature = data.draw(signatures(), label="signature")
    body = data.draw(bodies(signature), label="body")
    check_parse_tiers(body)
    check_decode_tiers(body, signature)


# Values among plain numbers that a fast tier must not read as plain numbers, by kind.
_ODD_VALUES = {
    "bool": st.sampled_from([Raw("true"), Raw("false")]),
    "edge_int": st.sampled_from(_EDGE_INTS).map(lambda i: Raw(str(i))),
    "float": st.sampled_from([Raw("0.5"), Raw("1.0"), Raw("-0.0"), Raw("1e39")]),
    "special": specials,
    "other": st.sampled_from([Raw("null"), "1", {"b64": "AA=="}, Raw("1e400"), Raw("-1")]),
    "array": st.sampled_from([[Raw("1")], []]),
}
_DENSE_NUMBERS = {
    "DT_FLOAT": st.one_of(floats, ints),
    "DT_DOUBLE": floats,
    "DT_INT32": st.integers(-1000, 1000).map(lambda i: Raw(str(i))),
    "DT_INT64": st.integers(-(2**40), 2**40).map(lambda i: Raw(str(i))),
    "DT_UINT8": st.integers(0, 255).map(lambda i: Raw(str(i))),
    "DT_UINT64": st.integers(0, 2**63).map(lambda i: Raw(str(i))),
    "DT_BOOL": bools,
}


@st.composite
def dense_bodies(draw: st.DrawFn) -> tuple[bytes, SignatureInfo]:
    """Bodies the fast tiers exist for (dense plain numbers, wide enough for numeric_json), often with one flaw."""
    names = draw(st.sampled_from([["x"], ["x"], ["x", "y"], ["b64"]]))
    dtype = draw(st.sampled_from(["DT_FLOAT", "DT_DOUBLE", *_DENSE_NUMBERS]))
    signature = SignatureInfo(
        "tensorflow/serving/predict", {name: TensorInfo(f"{name}:0", dtype) for name in names}, {}
    )
    shape = draw(st.lists(st.integers(1, 6), min_size=1, max_size=3))
    value = {name: draw(dense(shape, _DENSE_NUMBERS[dtype])) for name in names}
    nested = len(shape) > 1 and shape[-2] > 1 and shape[-1] > 1
    flaw = draw(weighted(none=3, bool=2, edge_int=2, float=1, special=1, other=1, array=1, ragged=2 if nested else 0))
    if flaw != "none":
        parent: list[Any] = value[names[-1]]
        for _ in range(len(shape) - 2):
            parent = parent[draw(st.integers(0, len(parent) - 1))]
        if flaw == "ragged":  # one value moved to a sibling list: the count still matches the shape
            parent[-1].append(parent[0].pop())
        else:
            row = parent if len(shape) == 1 else parent[draw(st.integers(0, len(parent) - 1))]
            row[draw(st.integers(0, len(row) - 1))] = draw(_ODD_VALUES[flaw])
    if draw(st.booleans()):
        rows = [{name: value[name][i] for name in names} for i in range(shape[0])]
        doc: dict[str, Any] = {"instances": rows if len(names) > 1 or draw(now_and_then(4)) else value[names[0]]}
    else:
        doc = {"inputs": value if len(names) > 1 or draw(now_and_then(4)) else value[names[0]]}
    if draw(now_and_then(4)):
        doc = {"signature_name": draw(st.sampled_from(["serving_default", "[", "]["])), **doc}
    return to_json(doc).encode().ljust(_NUMERIC_MIN_BODY), signature


def _case(body: str, dtype: str = "DT_FLOAT") -> tuple[bytes, SignatureInfo]:
    return body.encode().ljust(_NUMERIC_MIN_BODY), SignatureInfo(
        "tensorflow/serving/predict", {"x": TensorInfo("x:0", dtype)}, {}
    )


_WIDE = ", ".join(["1.5"] * 40)


@settings(max_examples=300, deadline=None)
@given(dense_bodies())
# Each of these is a body one fast tier would read wrong without one of its checks.
@example(_case(f'{{"instances": [[{_WIDE}, true]]}}'))  # a bool read as 1 by numpy
@example(_case(f'{{"instances": [[{_WIDE}, false]]}}', "DT_INT64"))
@example(_case(f'{{"instances": [[{_WIDE}, [2]], [{_WIDE}, 3]]}}'))  # an array where a number belongs
@example(_case('{"instances": [[[1, 2], [3, 4]], [[5, 6, 7], [8]]]}'))  # as many values, not rectangular
@example(_case(f'{{"instances": [[{_WIDE}, 1.5], [{_WIDE}]]}}'))  # one short
@example(_case('{"inputs": [1, 2147483648]}', "DT_INT32"))  # one past the type's range
@example(_case('{"inputs": [1, -2147483649]}', "DT_INT32"))
@example(_case('{"inputs": [1, 9223372036854775808]}', "DT_INT64"))
@example(_case(f'{{"inputs": [1, {2**60 + 2**36 + 1}]}}'))  # float32 through the double, as rapidjson
@example(_case(f'{{"inputs": [{_WIDE}, 1], "inputs": [{_WIDE}, 2]}}'))  # duplicate keys
@example(_case(f'{{"inputs": [{_WIDE}], "signature_name": "\\ud800"}}'))  # a lone surrogate escape
@example(_case(f'{{"inputs": [{_WIDE}, NaN, 1e309]}}'))  # past a double, with the stdlib parser's turn
@example(_case(f'{{"inputs": [{_WIDE}, NaN, 0.1e309]}}'))
@example(_case(f'{{"inputs": [{_WIDE}, NaN, 0e400]}}'))  # finite, yet past rapidjson's exponent limit
def test_dense_numbers_decode_alike_by_every_tier(case: tuple[bytes, SignatureInfo]) -> None:
    body, signature = case
    check_parse_tiers(body)
    check_decode_tiers(body, signature)


def _deep(depth: int, leaf: str) -> str:
    return "[" * depth + leaf + "]" * depth


_WIDE_ROW = "[" + ", ".join(["1.5"] * 600) + "]"  # enough values a level for numeric_json to take the body
_DEEP_LAYOUTS = [
    '{{"inputs": {deep}}}',
    '{{"instances": {deep}}}',
    '{{"inputs": [{{"a": {deep}}}]}}',  # an object where a number belongs, printed in the message
    '{{"instances": 5, "deep": {deep}}}',  # the whole document printed in the message
    '{{"inputs": {{"x": [1.0], "y": {deep}}}}}',
    '{{"inputs": [Infinity], "deep": {deep}}}',  # the stdlib parser's and the reader's turn
]


@settings(max_examples=40, deadline=None)
@given(
    st.integers(60, 1100),
    st.sampled_from(["1.5", '"a"', "NaN", "[]", _WIDE_ROW]),
    st.sampled_from(_DEEP_LAYOUTS),
    st.sampled_from(["DT_FLOAT", "DT_STRING", "DT_INT64"]),
)
@example(64, _WIDE_ROW, _DEEP_LAYOUTS[0], "DT_FLOAT")  # rank 65: numeric_json must decline, not crash numpy
@example(1000, "1", _DEEP_LAYOUTS[3], "DT_FLOAT")  # printing a deep document in a message
@example(1000, "1", _DEEP_LAYOUTS[2], "DT_FLOAT")
@example(600, "1", _DEEP_LAYOUTS[5], "DT_FLOAT")  # deeper than Python's recursion allows the reader
@example(1022, "1", _DEEP_LAYOUTS[5], "DT_FLOAT")  # 1024 arrays and objects: every parser reads it
@example(1023, "1", _DEEP_LAYOUTS[5], "DT_FLOAT")  # 1025: every parser refuses it
@example(1023, "1", _DEEP_LAYOUTS[0], "DT_FLOAT")
@example(5000, "1", _DEEP_LAYOUTS[5], "DT_FLOAT")
def test_deep_nesting_is_refused_alike_by_every_tier(depth: int, leaf: str, layout: str, dtype: str) -> None:
    body = layout.format(deep=_deep(depth, leaf)).encode().ljust(_NUMERIC_MIN_BODY)
    signature = SignatureInfo("tensorflow/serving/predict", {"x": TensorInfo("x:0", dtype)}, {})
    check_parse_tiers(body)
    check_decode_tiers(body, signature)


def test_nesting_stops_at_the_same_depth_for_every_parser() -> None:
    """orjson's limit (1024 arrays and objects) is the reader's, and the stdlib parser's whatever its recursion."""
    deepest, too_deep = _deep(1024, "1").encode(), _deep(1025, "1").encode()
    assert_same_json(orjson.loads(deepest), jsonparse.parse_like_rapidjson(deepest))
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(too_deep)
    with pytest.raises(TfServeError) as refused:
        jsonparse.parse_like_rapidjson(too_deep)
    assert refused.value.message == "JSON Parse error: Terminate parsing due to Handler error. at offset: 1024"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)  # room enough for the stdlib parser to read 1025 levels
    try:
        with pytest.raises(jsonparse.ParseDeclined):
            jsonparse.parse_with_stdlib(b'{"x": NaN, "y": ' + _deep(1024, "1").encode() + b"}")  # 1025 in all
        read = jsonparse.parse_with_stdlib(b'{"x": NaN, "y": ' + _deep(1023, "1").encode() + b"}")
        assert math.isnan(read["x"])
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize("dtype", ["DT_FLOAT", "DT_DOUBLE", "DT_INT64", "DT_INT32", "DT_BOOL", "DT_STRING"])
def test_the_tiers_under_test_take_the_bodies_meant_for_them(dtype: str) -> None:
    """The fast tiers do answer (not decline) the bodies they exist for, so the checks above compare something."""
    signature = SignatureInfo("tensorflow/serving/predict", {"x": TensorInfo("x:0", dtype)}, {})
    leaf = {"DT_BOOL": "true", "DT_STRING": '"s"'}.get(dtype, "1")
    row = "[" + ", ".join([leaf] * 50) + "]"
    body = ('{"instances": [' + ", ".join([row] * 10) + "]}").encode()
    doc = jsonparse.parse_json_body(body)
    if dtype != "DT_STRING":
        assert codec.decode_predict_vectorized(doc, signature) is not None
    if dtype in ("DT_FLOAT", "DT_DOUBLE"):
        numeric = numeric_json.parse_numeric_body(body)
        assert numeric is not None
        assert numeric.inputs_for(signature.inputs) is not None
    assert orjson.loads(body) == jsonparse.parse_with_stdlib(body)
    check_decode_tiers(body, signature)
