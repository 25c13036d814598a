"""TF Serving's JSON request text: rapidjson-compatible parsing, its error messages, and base64 values.

TF Serving parses bodies with rapidjson (``kParseNanAndInfFlag``) in
``util/json_tensor.cc``. This module reproduces what a client can observe of
that: which texts parse, the ``JSON Parse error: ... at offset: N`` messages,
``JsonValueToString`` (the value dumps inside error messages) and
``absl::Base64Unescape`` for ``{"b64": ...}`` values.
"""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any, NoReturn

import orjson

from tfserve_lab.errors import InvalidArgument
from tfserve_lab.protocol.rest.jsonwrite import value_to_string

__all__ = [
    "JsonDoc",
    "decode_b64_object",
    "format_error",
    "is_b64_object",
    "parse_json_body",
    "signature_name_of",
]

# rapidjson's GetParseError_En texts.
_EMPTY = "The document is empty."
_NOT_SINGULAR = "The document root must not be followed by other values."
_INVALID_VALUE = "Invalid value."
_MISS_NAME = "Missing a name for object member."
_MISS_COLON = "Missing a colon after a name of object member."
_MISS_COMMA_CURLY = "Missing a comma or '}' after an object member."
_MISS_COMMA_SQUARE = "Missing a comma or ']' after an array element."
_BAD_HEX = "Incorrect hex digit after \\u escape in string."
_BAD_SURROGATE = "The surrogate pair in string is invalid."
_BAD_ESCAPE = "Invalid escape character in string."
_MISS_QUOTE = "Missing a closing quotation mark in string."
_BAD_ENCODING = "Invalid encoding in string."
_TOO_BIG = "Number too big to be stored in double."
_MISS_FRACTION = "Miss fraction part in number."
_MISS_EXPONENT = "Miss exponent in number."

_WS = re.compile(rb"[ \t\n\r]*")
_DIGITS = re.compile(rb"[0-9]*")
_PLAIN = re.compile(rb'[^"\\\x00-\x1f]*')
_HEX = b"0123456789abcdefABCDEF"
_SIMPLE_ESCAPES = {0x22: '"', 0x5C: "\\", 0x2F: "/", 0x62: "\b", 0x66: "\f", 0x6E: "\n", 0x72: "\r", 0x74: "\t"}
# Texts the stdlib parser would accept differently from rapidjson: lone surrogate escapes.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_INT64_MIN, _UINT64_END = -(2**63), 2**64


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


class _Overflow(Exception):
    """A number the stdlib parser accepts but rapidjson refuses; the exact reader decides."""


def parse_json_body(body: bytes) -> JsonDoc:
    """Parses a request body the way TF Serving's ``ParseJson`` does.

    orjson parses valid JSON fast. Texts it refuses go to the stdlib parser
    (``NaN``/``Infinity``/``-Infinity`` outside strings, invalid UTF-8 inside
    them), then to a rapidjson-compatible reader (``Inf``, ``-NaN``, a BOM,
    a NUL terminator), which also produces TF Serving's error text.

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
        value = _parse_tolerant(body)
    if type(value) is not dict:
        raise format_error(value, "Is not object")
    return JsonDoc(value, body)


def _checked_float(token: str) -> float:
    value = float(token)
    exponent = token.lower().partition("e")[2]
    if math.isinf(value) or (exponent and int(exponent) > 308):
        raise _Overflow
    return value


def _checked_int(token: str) -> int | float:
    value = int(token)
    # rapidjson stores integers beyond 64 bits as doubles, as orjson does.
    return value if _INT64_MIN <= value < _UINT64_END else float(value)


def _parse_tolerant(body: bytes) -> Any:
    if _SURROGATE_ESCAPE.search(body) is None:
        try:
            text = body.decode("utf-8", "surrogateescape")
            return json.loads(text, parse_float=_checked_float, parse_int=_checked_int)
        except (ValueError, OverflowError, RecursionError, _Overflow):
            pass
    try:
        return _Reader(body).parse()
    except _ParseFailure as failure:
        raise InvalidArgument(f"JSON Parse error: {failure.args[0]} at offset: {failure.args[1]}") from None
    except RecursionError:
        raise InvalidArgument("JSON Parse error: Terminate parsing due to Handler error. at offset: 0") from None


class _ParseFailure(Exception):
    """A rapidjson parse error: message and byte offset."""


class _Reader:
    """rapidjson's Reader (``kParseNanAndInfFlag``) over bytes, with its error offsets."""

    def __init__(self, text: bytes) -> None:
        self.s = text
        self.i = 0
        # EncodedInputStream<UTF8<>, MemoryStream> drops each byte of a BOM on its own.
        for byte in (0xEF, 0xBB, 0xBF):
            if self.peek() == byte:
                self.i += 1

    def peek(self) -> int:
        # rapidjson's MemoryStream answers NUL past the end, so a NUL byte reads as the end.
        return self.s[self.i] if self.i < len(self.s) else 0

    def fail(self, message: str, offset: int | None = None) -> NoReturn:
        raise _ParseFailure(message, self.i if offset is None else offset)

    def consume(self, byte: int) -> bool:
        if self.peek() != byte:
            return False
        self.i += 1
        return True

    def run(self, pattern: re.Pattern[bytes]) -> bytes:
        """Consumes the (possibly empty) match of a star pattern at the cursor."""
        start = self.i
        self.i += len(pattern.match(self.s, start).group())  # type: ignore[union-attr]  # '*' always matches
        return self.s[start : self.i]

    def skip_ws(self) -> None:
        self.run(_WS)

    def digits(self) -> bytes:
        return self.run(_DIGITS)

    def parse(self) -> Any:
        self.skip_ws()
        if self.peek() == 0:
            self.fail(_EMPTY)
        value = self.value()
        self.skip_ws()
        if self.peek() != 0:
            self.fail(_NOT_SINGULAR)
        return value

    def value(self) -> Any:
        c = self.peek()
        if c in _LITERALS:
            word, value = _LITERALS[c]
            self.i += 1
            if not all(self.consume(b) for b in word[1:]):
                self.fail(_INVALID_VALUE)
            return value
        if c == 0x22:
            return self.string()
        if c == 0x7B:
            return self.container(0x7D, _MISS_COMMA_CURLY, keyed=True)
        if c == 0x5B:
            return self.container(0x5D, _MISS_COMMA_SQUARE, keyed=False)
        return self.number()

    def container(self, close: int, missing: str, *, keyed: bool) -> Any:
        self.i += 1
        self.skip_ws()
        items: list[Any] = []
        members: dict[str, Any] = {}
        if not self.consume(close):
            while True:
                if keyed:
                    if self.peek() != 0x22:
                        self.fail(_MISS_NAME)
                    key = self.string()
                    self.skip_ws()
                    if not self.consume(0x3A):
                        self.fail(_MISS_COLON)
                    self.skip_ws()
                    members[key] = self.value()
                else:
                    items.append(self.value())
                self.skip_ws()
                if self.consume(0x2C):
                    self.skip_ws()
                elif self.consume(close):
                    break
                else:
                    self.fail(missing)
        return members if keyed else items

    def string(self) -> str:
        self.i += 1
        parts: list[bytes] = []
        while True:
            parts.append(self.run(_PLAIN))
            c = self.peek()
            if c == 0x22:
                self.i += 1
                # rapidjson does not validate UTF-8; keep stray bytes round-trippable.
                return b"".join(parts).decode("utf-8", "surrogateescape")
            if c == 0x5C:
                parts.append(self.escape())
            else:
                self.fail(_MISS_QUOTE if c == 0 else _BAD_ENCODING)

    def escape(self) -> bytes:
        start = self.i
        self.i += 1
        e = self.peek()
        if e in _SIMPLE_ESCAPES:
            self.i += 1
            return _SIMPLE_ESCAPES[e].encode()
        if e != 0x75:
            self.fail(_BAD_ESCAPE, start)
        self.i += 1
        code = self.hex4(start)
        if 0xD800 <= code <= 0xDBFF:
            if not (self.consume(0x5C) and self.consume(0x75)):
                self.fail(_BAD_SURROGATE, start)
            low = self.hex4(start)
            if not 0xDC00 <= low <= 0xDFFF:
                self.fail(_BAD_SURROGATE, start)
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
        elif 0xDC00 <= code <= 0xDFFF:
            self.fail(_BAD_SURROGATE, start)
        return chr(code).encode()

    def hex4(self, start: int) -> int:
        code = 0
        for _ in range(4):
            c = self.peek()
            if c == 0 or c not in _HEX:
                self.fail(_BAD_HEX, start)
            code = code * 16 + int(chr(c), 16)
            self.i += 1
        return code

    def number(self) -> int | float:
        start = self.i
        minus = self.consume(0x2D)
        c = self.peek()
        special: float | None = None
        if 0x30 <= c <= 0x39:
            self.i += 1
            if c != 0x30:
                self.digits()
        elif c == 0x4E:
            self.i += 1
            if not (self.consume(0x61) and self.consume(0x4E)):
                self.fail(_MISS_FRACTION)
            special = math.nan
        elif c == 0x49:
            self.i += 1
            if not (self.consume(0x6E) and self.consume(0x66)):
                self.fail(_MISS_FRACTION)
            if self.peek() == 0x69 and not all(self.consume(b) for b in b"inity"):
                self.fail(_MISS_FRACTION)
            special = -math.inf if minus else math.inf
        else:
            self.fail(_INVALID_VALUE)
        fraction = b""
        if self.consume(0x2E):
            fraction = self.digits()
            if not fraction:
                self.fail(_MISS_FRACTION)
        exponent = None
        if self.consume(0x65) or self.consume(0x45):
            negative = not self.consume(0x2B) and self.consume(0x2D)
            run = self.digits()
            if not run:
                self.fail(_MISS_EXPONENT)
            exponent = int(run)
            # rapidjson refuses positive exponents past 308 plus the fraction digits.
            if not negative and exponent > 308 + len(fraction):
                self.fail(_TOO_BIG, start)
        if special is not None:
            return special
        token = self.s[start : self.i]
        try:
            value: int | float = float(token) if fraction or exponent is not None else _checked_int(token.decode())
        except (OverflowError, ValueError):
            self.fail(_TOO_BIG, start)
        if isinstance(value, float) and math.isinf(value):
            self.fail(_TOO_BIG, start)
        return value


_LITERALS: dict[int, tuple[bytes, Any]] = {0x6E: (b"null", None), 0x74: (b"true", True), 0x66: (b"false", False)}


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
