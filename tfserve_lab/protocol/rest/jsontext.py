"""rapidjson's and TF Serving's text of single JSON values: numbers, strings, and values in error messages.

``WriteDecimal`` (``util/json_tensor.cc``) writes floats: ``%g`` when it
reads back as the same value, else ``%.9g`` (float) or ``%.17g`` (double),
``.0`` added to whole numbers, ``NaN``/``Infinity``/``-Infinity`` spelled
out. rapidjson's ``Writer`` writes strings (bytes as they are, controls
escaped) and, in ``JsonValueToString``, nested doubles in their shortest
form. ``DataTypeString`` and shapes print as TF Serving's messages do.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator
from typing import Any

__all__ = [
    "float_token",
    "json_type_name",
    "quote",
    "shape_text",
    "shortest",
    "to_float32",
    "type_string",
    "value_to_string",
]

_INT64_MIN, _UINT64_END = -(2**63), 2**64


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
        _pretty(value, out)
    except _Truncated:
        pass
    return "".join(out)


def _pretty(value: Any, out: list[str]) -> None:
    """PrettyWriter's text of ``value`` on its own stack: documents nest as deep as the parsers allow."""
    stack: list[tuple[Iterator[Any], bool]] = []  # the open containers: their items left, whether keyed
    while True:
        if isinstance(value, (dict, list)) and value:
            keyed = isinstance(value, dict)
            out.append("{" if keyed else "[")
            stack.append((iter(value.items()) if isinstance(value, dict) else iter(value), keyed))
            separator = ""
        else:
            out.append(_scalar_text(value))
            separator = ","
        while stack:  # the next item of the innermost open container, closing those that are done
            items, keyed = stack[-1]
            item: Any = next(items, _END)
            if item is not _END:
                break
            stack.pop()
            out.append("\n" + "    " * len(stack) + ("}" if keyed else "]"))
            separator = ","
        else:
            return
        out.append(separator + "\n" + "    " * len(stack))
        if keyed:
            out.append(_string_text(item[0]) + ": ")
            item = item[1]
        value = item


_END = object()


def _scalar_text(value: Any) -> str:
    """A value that is not a non-empty container, as rapidjson's Writer spells it."""
    if value is None or value is True or value is False:
        return json_type_name(value).lower()
    if _is_double(value):
        number = float(value)
        if not math.isfinite(number):
            raise _Truncated
        return shortest(number)
    if type(value) is int:
        return str(value)
    if isinstance(value, str):
        return _string_text(value)
    return "{}" if isinstance(value, dict) else "[]"


def _string_text(text: str) -> str:
    return quote(text.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")


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
