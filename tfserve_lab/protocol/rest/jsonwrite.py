"""TF Serving's JSON response text: predict, classify, regress and error bodies, byte for byte.

TF Serving writes these with rapidjson's ``PrettyWriter`` (4-space indents;
``kFormatSingleLineArray`` switched on around each row of ``predictions`` and
``results``) and its own float text, ``WriteDecimal`` in
``util/json_tensor.cc``, here vectorized over whole tensors (``float_tokens``).
The text of single values comes from ``jsontext`` (and is re-exported).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from tfserve_lab.core.dtypes import dt_for_numpy
from tfserve_lab.errors import InvalidArgument
from tfserve_lab.protocol.rest.jsontext import (
    float_token,
    quote,
    shape_text,
    type_string,
)

__all__ = [
    "JSON_FLOATS",
    "encode_classify_response",
    "encode_error",
    "encode_predict_response",
    "encode_regress_response",
    "float_tokens",
]

# The float DataTypes TF Serving's JSON reads and writes as doubles (json_tensor.cc).
JSON_FLOATS = frozenset({"DT_FLOAT", "DT_DOUBLE"})
# Types AddSingleValueAndAdvance writes as JSON integers or booleans (orjson spells them the same).
_PLAIN = frozenset({"DT_INT8", "DT_INT16", "DT_INT32", "DT_UINT8", "DT_INT64", "DT_UINT32", "DT_UINT64", "DT_BOOL"})


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
