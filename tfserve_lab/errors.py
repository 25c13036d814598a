"""Typed errors shared by the engine and every protocol adapter.

    TfServeError(code, message)          carries a gRPC canonical code name
      ServableNotFound                   NOT_FOUND, "Servable not found for request: ..."
      InvalidArgument                    INVALID_ARGUMENT
      FailedPrecondition                 FAILED_PRECONDITION
      Unavailable                        UNAVAILABLE (full batch queue, engine stopping)
      ConfigError                        a flag or config file that cannot be used

No web framework is imported here: each adapter owns one table from
``ErrorCode`` to its own status codes.
"""

from __future__ import annotations

import enum

__all__ = [
    "ConfigError",
    "ErrorCode",
    "FailedPrecondition",
    "InvalidArgument",
    "ServableNotFound",
    "TfServeError",
    "Unavailable",
]


class ErrorCode(enum.IntEnum):
    """gRPC canonical status codes, by the names TF Serving's REST errors use."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class TfServeError(Exception):
    """An error with a canonical code and a message in TF Serving's words."""

    code: ErrorCode = ErrorCode.UNKNOWN

    def __init__(self, message: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}: {self.message!r})"


class ServableNotFound(TfServeError):
    """No loaded version matches the request's model, version or label."""

    code = ErrorCode.NOT_FOUND


class InvalidArgument(TfServeError):
    """The request itself is wrong: shapes, dtypes, names, JSON."""

    code = ErrorCode.INVALID_ARGUMENT


class FailedPrecondition(TfServeError):
    """The request is well-formed but the servable cannot answer it."""

    code = ErrorCode.FAILED_PRECONDITION


class Unavailable(TfServeError):
    """The engine cannot take the request now (queue full, shutting down)."""

    code = ErrorCode.UNAVAILABLE


class ConfigError(TfServeError):
    """A flag, a config file or a model path cannot be used."""

    code = ErrorCode.INVALID_ARGUMENT
