"""TF Serving's JSON response text: predict, classify, regress and error bodies, byte for byte.

TF Serving writes these with rapidjson's ``PrettyWriter`` (4-space indents;
``kFormatSingleLineArray`` switched on around each row of ``predictions`` and
``results``) and its own float text, ``WriteDecimal`` in
``util/json_tensor.cc``: ``%g`` (six significant digits) when that reads back
as the same value, else ``%.9g`` (float) or ``%.17g`` (double), ``.0`` added
to whole numbers, ``NaN``/``Infinity``/``-Infinity`` spelled out.
"""

from __future__ import annotations

import base64
import math
import re
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from tfserve_lab.core.dtypes import dt_for_numpy
from tfserve_lab.errors import InvalidArgument

__all__ = [
    "JSON_FLOATS",
    "encode_classify_response",
    "encode_error",
    "encode_predict_response",
    "encode_regress_response",
    "float_token",
    "float_tokens",
    "json_type_name",
    "quote",
    "shape_text",
    "shortest",
    "to_float32",
    "type_string",
    "value_to_string",
]

# The float DataTypes TF Serving's JSON reads and writes as doubles (json_tensor.cc).
JSON_FLOATS = frozenset({"DT_FLOAT", "DT_DOUBLE"})
# Types AddSingleValueAndAdvance writes as JSON integers or booleans (orjson spells them the same).
_INT64_MIN, _UINT64_END = -(2**63), 2**64
_PLAIN = frozenset({"DT_INT8", "DT_INT16", "DT_INT32", "DT_UINT8", "DT_INT64", "DT_UINT32", "DT_UINT64", "DT_BOOL"})


def shortest(number: float) -> str:
    """rapidjson's ``dtoa`` (Grisu2 shortest digits, then ``Prettify``)."""
    if number == 0:
        return "-0.0" if math.copysign(1.0, number) < 0 else "0.0"
    sign = "-" if number < 0 else ""
    mantissa, _, exp = repr(abs(number)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    k = int(exp or 0) - len(frac) + len(digits) - len(digits.rstrip("0"))
    digits = digits.rstrip("0")
    length = len(digits)
    kk = length + k
    if k >= 0 and kk <= 21:
        text = digits + "0" * k + ".0"
    elif 0 < kk <= 21:
        text = digits[:kk] + "." + digits[kk:]
    elif -6 < kk <= 0:
        text = "0." + "0" * -kk + digits
    else:
        text = (digits if length == 1 else digits[0] + "." + digits[1:]) + f"e{kk - 1}"
    return sign + text


def json_type_name(value: Any) -> str:
    """rapidjson's type name as ``JsonTypeString`` spells it."""
    if value is None:
        return "Null"
    if value is True or value is False:
        return "True" if value else "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    return "String" if isinstance(value, str) else "Number"


def _is_double(value: Any) -> bool:
    # Python ints beyond 64 bits only come from the stdlib fallback: rapidjson holds them as doubles.
    return type(value) is float or (type(value) is int and not _INT64_MIN <= value < _UINT64_END)


class _Truncated(Exception):
    """rapidjson's Writer stops at a nested NaN/Infinity (it refuses to write them)."""


def value_to_string(value: Any) -> str:
    """``JsonValueToString``: the value as rapidjson's PrettyWriter prints it (4-space indents).

    A top-level number that is a double prints through ``WriteDecimal`` (as a
    float when it fits one); nested doubles print rapidjson's shortest form,
    and the text stops at a nested NaN or Infinity, as rapidjson's does.
    """
    if _is_double(value):
        number = float(value)
        if -3.4028234e38 <= number <= 3.4028234e38:
            return float_token(to_float32(number), single=True)
        return float_token(number, single=False)
    out: list[str] = []
    try:
        _pretty(value, 0, out)
    except _Truncated:
        pass
    return "".join(out)


def _pretty(value: Any, level: int, out: list[str]) -> None:
    if value is None or value is True or value is False:
        out.append(json_type_name(value).lower())
    elif _is_double(value):
        number = float(value)
        if not math.isfinite(number):
            raise _Truncated
        out.append(shortest(number))
    elif type(value) is int:
        out.append(str(value))
    elif isinstance(value, str):
        out.append(quote(value.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape"))
    elif not value:
        out.append("{}" if isinstance(value, dict) else "[]")
    else:
        keyed = isinstance(value, dict)
        indent = "\n" + "    " * (level + 1)
        out.append("{" if keyed else "[")
        for index, item in enumerate(value.items() if keyed else value):
            out.append(("," if index else "") + indent)
            if keyed:
                out.append(quote(item[0].encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape") + ": ")
                item = item[1]
            _pretty(item, level + 1, out)
        out.append("\n" + "    " * level + ("}" if keyed else "]"))


_FLOAT32 = struct.Struct("f")


def to_float32(number: float) -> float:
    """The float32 nearest to a double (C's ``static_cast<float>``), as a Python float."""
    return float(_FLOAT32.unpack(_FLOAT32.pack(number))[0])


def float_token(number: float, *, single: bool) -> str:
    """``WriteDecimal``: ``%g`` (six digits) when it round-trips, else ``%.9g``/``%.17g``; ``.0`` for whole numbers.

    Args:
        number: The value (already a float32 value when ``single``).
        single: Whether the tensor is DT_FLOAT (round-trip checked as float32).
    """
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "-Infinity" if number < 0 else "Infinity"
    text = f"{number:g}"
    back = float(text)
    if single:
        try:
            back = to_float32(back)
        except OverflowError:
            back = math.inf
    if back != number:
        text = f"{number:.9g}" if single else f"{number:.17g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def float_tokens(values: np.ndarray) -> list[bytes]:
    """``WriteDecimal`` text of every element of a float32/float64 array, in C order.

    Which of ``%g`` and ``%.9g``/``%.17g`` applies is decided with vectorized
    arithmetic (round to six significant digits, read back). Where ``%g``
    is positional, in [1e-4, 1e6), its text is the shortest round-trip text
    orjson writes; the other elements are formatted one by one. A value whose
    read-back lies too close to a rounding boundary for float64 arithmetic to
    call is formatted exactly by ``float_token``.
    """
    flat = np.ascontiguousarray(values.reshape(-1), dtype=values.dtype.newbyteorder("="))
    if flat.size == 0:
        return []
    single = flat.dtype == np.float32
    if flat.size <= 16:
        # Small outputs (one prediction a request): formatting each value beats the vector set-up.
        return [float_token(v, single=single).encode() for v in flat.tolist()]
    tokens = np.array(orjson.dumps(flat, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b","), dtype=object)
    with np.errstate(all="ignore"):
        wide = flat.astype(np.float64)
        index = np.flatnonzero(np.isfinite(wide) & (wide != 0))
        m = np.abs(wide[index])
        e = np.floor(np.log10(m))
        power = np.power(10.0, e)
        e = np.where(m < power, e - 1, np.where(m >= power * 10, e + 1, e))
        k = 5 - e  # six significant digits: round m * 10**k to an integer
        up = k >= 0
        scale = np.power(10.0, np.abs(k))
        digits = np.rint(np.where(up, m * scale, m / scale))
        rounded = np.where(up, digits / scale, digits * scale)
        if single:
            narrow = m.astype(np.float32)
            back = rounded.astype(np.float32).astype(np.float64)
            # Half the float32 gap on the side of `rounded`: where narrowing switches over.
            toward = np.where(rounded < m, -np.inf, np.inf).astype(np.float32)
            half_gap = np.abs(np.nextafter(narrow, toward).astype(np.float64) - m) / 2
            unsure = np.abs(np.abs(rounded - m) - half_gap) <= m * 1e-12
        else:
            back = rounded
            unsure = np.abs(k) > 22  # 10**k is exact in float64 only up to 1e22
        round_trips = back == m
        positional = round_trips & (rounded >= 1e-4) & (rounded < 1e6)
    full, limit = (b"%.9g", 1e9) if single else (b"%.17g", 1e17)
    whole = (np.floor(m) == m) & (m < limit)
    for mask, fmt, suffix in (
        (~round_trips & ~whole, full, b""),
        (~round_trips & whole, full, b".0"),
        (round_trips & ~positional, b"%g", b""),
    ):
        chosen = index[mask & ~unsure]
        tokens[chosen] = [fmt % number + suffix for number in wide[chosen].tolist()]
    for i in [*index[unsure].tolist(), *np.flatnonzero(~np.isfinite(wide)).tolist()]:
        tokens[i] = float_token(float(wide[i]), single=single).encode()
    text: list[bytes] = tokens.tolist()
    return text


_QUOTE_NEEDED = re.compile(rb'[\x00-\x1f"\\]')
_QUOTE_TABLE = {i: b"\\u%04X" % i for i in range(0x20)}
_QUOTE_TABLE.update({0x08: b"\\b", 0x09: b"\\t", 0x0A: b"\\n", 0x0C: b"\\f", 0x0D: b"\\r", 0x22: b'\\"', 0x5C: b"\\\\"})


def quote(raw: bytes) -> bytes:
    """A JSON string as rapidjson's Writer writes it: bytes as they are, ``\\uXXXX`` uppercase for controls."""
    if _QUOTE_NEEDED.search(raw) is None:
        return b'"' + raw + b'"'
    return b'"' + _QUOTE_NEEDED.sub(lambda m: _QUOTE_TABLE[m.group()[0]], raw) + b'"'


def type_string(dtype: str) -> str:
    """TensorFlow's ``DataTypeString`` for a DataType name (``DT_FLOAT`` -> ``float``)."""
    return "INVALID" if dtype == "DT_INVALID" else dtype.removeprefix("DT_").lower()


def shape_text(shape: list[int]) -> str:
    """A shape as TF Serving's messages print it: ``[2,3]``."""
    return "[" + ",".join(map(str, shape)) + "]"


def _as_bytes(item: Any) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8", "surrogateescape")
    raise InvalidArgument("Failed to write JSON value for tensor type: string")


def _tokens(array: np.ndarray, name: str, depth: int) -> list[bytes]:
    """``AddSingleValueAndAdvance`` for every element; ``depth`` is the writer's nesting at the values."""
    try:
        dtype = dt_for_numpy(array.dtype)
    except KeyError:
        dtype = "DT_" + array.dtype.name.upper()
    if array.size == 0:
        return []  # nothing written, so nothing to refuse either
    if dtype in JSON_FLOATS:
        return float_tokens(array)
    if dtype in _PLAIN:
        flat = np.ascontiguousarray(array.reshape(-1), dtype=array.dtype.newbyteorder("="))
        return orjson.dumps(flat, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
    if dtype != "DT_STRING":
        raise InvalidArgument(f"Failed to write JSON value for tensor type: {type_string(dtype)}")
    raw = [_as_bytes(item) for item in array.reshape(-1).tolist()]
    if not name.endswith("_bytes"):
        return [quote(item) for item in raw]
    # {"b64": ...} is a PrettyWriter object: multi-line even inside a single-line array.
    head = b"{\n" + b" " * (4 * (depth + 1)) + b'"b64": "'
    tail = b'"\n' + b" " * (4 * depth) + b"}"
    return [head + base64.b64encode(item) + tail for item in raw]


def _nest(tokens: list[bytes], shape: tuple[int, ...], start: int, depth: int | None) -> list[bytes]:
    """Wraps C-order tokens into arrays over ``shape[start:]``: one item per index of ``shape[:start]``.

    ``depth`` None writes single-line arrays (``kFormatSingleLineArray``);
    otherwise it is the writer nesting of the outermost array (indented form).
    """
    for axis in range(len(shape) - 1, start - 1, -1):
        size, count = shape[axis], math.prod(shape[:axis])
        if depth is None:
            opening, separator, closing = b"[", b", ", b"]"
        else:
            pad = b" " * (4 * (depth + axis - start + 1))
            opening, separator, closing = b"[\n" + pad, b",\n" + pad, b"\n" + pad[4:] + b"]"
        if size == 0:
            tokens = [b"[]"] * count
        else:
            tokens = [opening + separator.join(tokens[i : i + size]) + closing for i in range(0, count * size, size)]
    return tokens


def encode_predict_response(outputs: Mapping[str, np.ndarray], row_format: bool) -> bytes:
    """``MakeJsonFromTensors``: ``{"predictions": ...}`` for row requests, ``{"outputs": ...}`` for columnar ones.

    Outputs print in the mapping's order. DT_STRING outputs whose alias ends
    in ``_bytes`` print as ``{"b64": ...}``; floats print as ``WriteDecimal``
    does (``NaN``, ``Infinity``, six significant digits when they round-trip).

    Raises:
        InvalidArgument: No outputs, a scalar or inconsistent batch in row
            format, or a type TF Serving cannot write (half, complex, ...).
    """
    if not outputs:
        raise InvalidArgument("Cannot convert empty tensor map to JSON")
    tensors = [(name, np.asarray(array)) for name, array in outputs.items()]
    several = len(tensors) > 1
    if not row_format:
        depth = 2 if several else 1
        values = [(name, _nest(_tokens(a, name, depth + a.ndim), a.shape, 0, depth)[0]) for name, a in tensors]
        if not several:
            return b'{\n    "outputs": ' + values[0][1] + b"\n}"
        fields = [b"\n        " + quote(name.encode()) + b": " + value for name, value in values]
        return b'{\n    "outputs": {' + b",".join(fields) + b"\n    }\n}"
    batch = -1
    for name, array in tensors:
        if array.ndim == 0:
            raise InvalidArgument(f"Tensor name: {name} has no shape information ")
        if batch >= 0 and array.shape[0] != batch:
            raise InvalidArgument(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} expecting: {batch}"
            )
        batch = array.shape[0]
    depth = 3 if several else 2
    rows = [(name, _nest(_tokens(a, name, depth + a.ndim - 1), a.shape, 1, None)) for name, a in tensors]
    if batch == 0:
        return b'{\n    "predictions": []\n}'
    if not several:
        # The single-line format is already on when each row's value starts: no newline before it.
        return b'{\n    "predictions": [' + b", ".join(rows[0][1]) + b"\n    ]\n}"
    keys = [b"\n            " + quote(name.encode()) + b": " for name, _ in rows]
    objects = [
        b"{" + b",".join(key + items[i] for key, (_, items) in zip(keys, rows, strict=True)) + b"\n        }"
        for i in range(batch)
    ]
    return b'{\n    "predictions": [\n        ' + b",\n        ".join(objects) + b"\n    ]\n}"


def encode_classify_response(classes: np.ndarray | None, scores: np.ndarray | None) -> bytes:
    """``MakeJsonFromClassificationResult``: ``{"results": [[["label", score], ...], ...]}``.

    Args:
        classes: ``[batch, num_classes]`` labels (bytes or str), or None: labels print as ``""``.
        scores: ``[batch, num_classes]`` scores, or None: scores print as ``0.0``.
    """
    present = [np.asarray(a) for a in (classes, scores) if a is not None]
    for array in present:
        if array.ndim != 2:
            raise InvalidArgument(
                f"Expected Tensor shape: [batch_size num_classes] but got {shape_text(list(array.shape))}"
            )
    batch, width = present[0].shape if present else (0, 0)
    if batch == 0:
        raise InvalidArgument("Cannot convert empty ClassificationResults to JSON")
    count = batch * width
    labels = (
        [quote(_as_bytes(c)) for c in np.asarray(classes).reshape(-1).tolist()]
        if classes is not None
        else [b'""'] * count
    )
    values = float_tokens(np.asarray(scores, dtype=np.float32)) if scores is not None else [b"0.0"] * count
    pairs = [b"[" + label + b", " + value + b"]" for label, value in zip(labels, values, strict=True)]
    results = (
        [b"[" + b", ".join(pairs[i : i + width]) + b"]" for i in range(0, count, width)] if width else [b"[]"] * batch
    )
    return b'{\n    "results": [' + b", ".join(results) + b"\n    ]\n}"


def encode_regress_response(values: np.ndarray) -> bytes:
    """``MakeJsonFromRegressionResult``: ``{"results": [v, ...]}``, one float per example."""
    flat = np.asarray(values, dtype=np.float32).reshape(-1)
    if flat.size == 0:
        raise InvalidArgument("Cannot convert empty RegressionResults to JSON")
    return b'{\n    "results": [' + b", ".join(float_tokens(flat)) + b"]\n}"


def encode_error(message: str) -> bytes:
    """``MakeJsonFromStatus``: ``{"error": "<message>"}`` as rapidjson's PrettyWriter escapes it."""
    return b'{\n    "error": ' + quote(message.encode("utf-8", "surrogateescape")) + b"\n}"
