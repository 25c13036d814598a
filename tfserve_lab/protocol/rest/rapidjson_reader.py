"""rapidjson's Reader (``kParseNanAndInfFlag``) over bytes: which texts parse, their values, its error offsets.

TF Serving parses request bodies with rapidjson; this reader accepts what it
accepts (``NaN``, ``Inf``, ``-Infinity``, a BOM, raw bytes in strings, a NUL
as the end of the text) and refuses the rest with rapidjson's
``GetParseError_En`` text and offset. It is the slowest parser of the chain
in ``jsonparse`` and the one that decides what the faster ones leave to it.

It keeps its own stack rather than Python's, so nesting is bounded by
``MAX_DEPTH`` (orjson's limit: every parser of the chain reads the same
documents) and never by the interpreter's recursion limit.
"""

from __future__ import annotations

import math
import re
from typing import Any, NoReturn

from tfserve_lab.errors import InvalidArgument

__all__ = ["MAX_DEPTH", "parse_like_rapidjson", "rapidjson_int"]

# orjson refuses documents nesting more than this many arrays and objects; so does this reader.
MAX_DEPTH = 1024

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
# kParseErrorTermination: where rapidjson's handler stops the parse (here, past MAX_DEPTH).
_TERMINATED = "Terminate parsing due to Handler error."

_WS = re.compile(rb"[ \t\n\r]*")
_DIGITS = re.compile(rb"[0-9]*")
_PLAIN = re.compile(rb'[^"\\\x00-\x1f]*')
_HEX = b"0123456789abcdefABCDEF"
_SIMPLE_ESCAPES = {0x22: '"', 0x5C: "\\", 0x2F: "/", 0x62: "\b", 0x66: "\f", 0x6E: "\n", 0x72: "\r", 0x74: "\t"}
_LITERALS: dict[int, tuple[bytes, Any]] = {0x6E: (b"null", None), 0x74: (b"true", True), 0x66: (b"false", False)}
_INT64_MIN, _UINT64_END = -(2**63), 2**64
_OPEN, _CLOSE = frozenset(b"[{"), {0x5B: 0x5D, 0x7B: 0x7D}


def rapidjson_int(token: str) -> int | float:
    """An integer token's value: rapidjson (and orjson) hold integers beyond 64 bits as doubles."""
    value = int(token)
    return value if _INT64_MIN <= value < _UINT64_END else float(value)


def parse_like_rapidjson(body: bytes) -> Any:
    """The body's value as TF Serving's rapidjson reads it.

    Raises:
        InvalidArgument: ``JSON Parse error: ... at offset: N``, TF Serving's text.
    """
    try:
        return _Reader(body).parse()
    except _ParseFailure as failure:
        raise InvalidArgument(f"JSON Parse error: {failure.args[0]} at offset: {failure.args[1]}") from None


class _ParseFailure(Exception):
    """A rapidjson parse error: message and byte offset."""


class _Reader:
    """One pass over the text, rapidjson's way; containers on an explicit stack."""

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
        """One value, containers included: ParseArray and ParseObject's steps, in a loop instead of recursion."""
        # Open containers, innermost last: (the container, its closing byte, the key its next value goes under).
        stack: list[tuple[list[Any] | dict[str, Any], int, str]] = []
        while True:
            c = self.peek()
            if c not in _OPEN:
                value = self.scalar()
            else:
                if len(stack) == MAX_DEPTH:
                    self.fail(_TERMINATED)
                self.i += 1
                self.skip_ws()
                close = _CLOSE[c]
                container: list[Any] | dict[str, Any] = {} if c == 0x7B else []
                if not self.consume(close):
                    stack.append((container, close, self.key() if close == 0x7D else ""))
                    continue
                value = container
            # A value is complete: add it to its container, then read on to the next member or the close.
            while stack:
                container, close, key = stack[-1]
                if type(container) is dict:
                    container[key] = value
                else:
                    container.append(value)  # type: ignore[union-attr]  # a list: only objects are dicts
                self.skip_ws()
                if self.consume(0x2C):
                    self.skip_ws()
                    if close == 0x7D:
                        stack[-1] = (container, close, self.key())
                    break
                if not self.consume(close):
                    self.fail(_MISS_COMMA_CURLY if close == 0x7D else _MISS_COMMA_SQUARE)
                stack.pop()
                value = container
            else:
                return value

    def key(self) -> str:
        """An object member's name and its colon, up to the value."""
        if self.peek() != 0x22:
            self.fail(_MISS_NAME)
        key = self.string()
        self.skip_ws()
        if not self.consume(0x3A):
            self.fail(_MISS_COLON)
        self.skip_ws()
        return key

    def scalar(self) -> Any:
        c = self.peek()
        if c in _LITERALS:
            word, value = _LITERALS[c]
            self.i += 1
            if not all(self.consume(b) for b in word[1:]):
                self.fail(_INVALID_VALUE)
            return value
        if c == 0x22:
            return self.string()
        return self.number()

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
            value: int | float = float(token) if fraction or exponent is not None else rapidjson_int(token.decode())
        except (OverflowError, ValueError):
            self.fail(_TOO_BIG, start)
        if isinstance(value, float) and math.isinf(value):
            self.fail(_TOO_BIG, start)
        return value
