"""TF Serving's JSON request text: bodies parsed as rapidjson reads them, ``signature_name``, and base64 values.

TF Serving parses bodies with rapidjson (``kParseNanAndInfFlag``) in
``util/json_tensor.cc``. ``parse_json_body`` chains three parsers, fastest
first, each reading a text exactly as rapidjson does or leaving it to the
next: orjson (valid JSON), the stdlib parser (``NaN``/``Infinity`` outside
strings, invalid UTF-8 inside them), and ``rapidjson_reader`` (``Inf``,
``-NaN``, a BOM, a NUL terminator), which words TF Serving's
``JSON Parse error: ... at offset: N``. Also here: ``FormatError``
(the value dumps inside error messages) and ``absl::Base64Unescape`` for
``{"b64": ...}`` values.
"""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any

import orjson

from tfserve_lab.errors import InvalidArgument
from tfserve_lab.protocol.rest.jsontext import value_to_string
from tfserve_lab.protocol.rest.rapidjson_reader import MAX_DEPTH, parse_like_rapidjson, rapidjson_int

__all__ = [
    "JsonDoc",
    "ParseDeclined",
    "decode_b64_object",
    "format_error",
    "is_b64_object",
    "parse_json_body",
    "parse_with_stdlib",
    "signature_name_of",
]

# Texts the stdlib parser would accept differently from rapidjson: lone surrogate escapes.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class JsonDoc(dict[str, Any]):
    """A parsed request body (a plain ``dict``) that keeps its text for cheap literal checks."""

    __slots__ = ("_bools", "_text")

    def __init__(self, value: dict[str, Any], text: bytes) -> None:
        super().__init__(value)
        self._text = text
        self._bools: bool | None = None

    @property
    def may_have_bools(self) -> bool:
        """Whether the text spells ``true`` or ``false`` anywhere (strings included: conservative)."""
        if self._bools is None:
            self._bools = b"true" in self._text or b"false" in self._text
        return self._bools


class ParseDeclined(Exception):
    """A faster reader leaves the text to the next one, which decides (and words any error)."""


def parse_json_body(body: bytes) -> JsonDoc:
    """Parses a request body the way TF Serving's ``ParseJson`` does.

    orjson first, then ``parse_with_stdlib``, then ``parse_like_rapidjson``,
    which decides what the faster two leave to it.

    Args:
        body: The raw HTTP body, whatever its content type.

    Returns:
        The top-level JSON object.

    Raises:
        InvalidArgument: ``JSON Parse error: ... at offset: N`` for bad JSON,
            ``JSON Value: ... Is not object`` for another top-level value.
    """
    if not body:
        raise InvalidArgument("JSON Parse error: The document is empty")
    body = bytes(body) if not isinstance(body, bytes) else body
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            value = parse_with_stdlib(body)
        except ParseDeclined:
            value = parse_like_rapidjson(body)
    if type(value) is not dict:
        raise format_error(value, "Is not object")
    return JsonDoc(value, body)


def parse_with_stdlib(body: bytes) -> Any:
    """The body's value by the stdlib parser, where it reads the text as rapidjson does.

    Raises:
        ParseDeclined: For any text it refuses or might read differently (lone surrogates, overflow,
            nesting past ``MAX_DEPTH``).
    """
    if _SURROGATE_ESCAPE.search(body) is not None:
        raise ParseDeclined
    try:
        text = body.decode("utf-8", "surrogateescape")
        value = json.loads(text, parse_float=_checked_float, parse_int=rapidjson_int)
    except (ValueError, OverflowError, RecursionError, _Overflow):
        raise ParseDeclined from None
    # How deep the stdlib goes depends on the recursion limit; the other parsers stop at MAX_DEPTH.
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and not _nests_within(value, MAX_DEPTH):
        raise ParseDeclined
    return value


def _nests_within(value: Any, limit: int) -> bool:
    """Whether ``value`` holds at most ``limit`` arrays and objects one inside the other."""
    level = [value] if isinstance(value, (list, dict)) else []
    for _ in range(limit):
        level = [item for box in level for item in (box.values() if type(box) is dict else box)]
        level = [item for item in level if isinstance(item, (list, dict))]
        if not level:
            return True
    return False


class _Overflow(Exception):
    """A number the stdlib parser accepts but rapidjson refuses; ``rapidjson_reader`` decides."""


def _checked_float(token: str) -> float:
    value = float(token)
    exponent = token.lower().partition("e")[2]
    if math.isinf(value) or (exponent and int(exponent) > 308):
        raise _Overflow
    return value


def signature_name_of(doc: dict[str, Any]) -> str:
    """The request's ``signature_name``, ``""`` when absent (``FillSignature``).

    Raises:
        InvalidArgument: When ``signature_name`` is not a string.
    """
    if "signature_name" not in doc:
        return ""
    name = doc["signature_name"]
    if type(name) is not str:
        raise InvalidArgument(
            f"JSON Value: {value_to_string(doc)} not formatted correctly. 'signature_name' key must be a string value."
        )
    return name


def format_error(value: Any, *parts: str) -> InvalidArgument:
    """TF Serving's ``FormatError``: ``JSON Value: <value> <parts>``."""
    return InvalidArgument(f"JSON Value: {value_to_string(value)} {''.join(parts)}")


def is_b64_object(value: Any) -> bool:
    """``IsValBase64Object``: an object with exactly one key, ``b64``, holding a string."""
    return type(value) is dict and len(value) == 1 and type(value.get("b64")) is str


_B64_SPACE = re.compile(r"[ \t\n\v\f\r]+")
_B64_TEXT = re.compile(r"([A-Za-z0-9+/]*)([=.]*)")


def decode_b64_object(value: Any) -> bytes:
    """``JsonDecodeBase64Object``: the bytes of a ``{"b64": ...}`` value.

    Decodes as ``absl::Base64Unescape`` does: standard alphabet, whitespace
    ignored, padding (``=`` or ``.``) optional but exact when present.

    Raises:
        InvalidArgument: ``... not formatted correctly for base64 data`` or
            ``Unable to base64 decode``.
    """
    if not is_b64_object(value):
        raise InvalidArgument(f"JSON Value: {value_to_string(value)} not formatted correctly for base64 data")
    match = _B64_TEXT.fullmatch(_B64_SPACE.sub("", value["b64"]))
    if match is not None:
        data, padding = match.groups()
        missing = (4 - len(data) % 4) % 4
        if missing != 3 and (not padding or len(padding) == missing):
            return base64.b64decode(data + "=" * missing)
    raise InvalidArgument("Unable to base64 decode")
