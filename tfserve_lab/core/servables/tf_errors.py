"""TensorFlow errors translated to TfServeErrors with the code and first line TF Serving reports."""

from __future__ import annotations

import re

from tfserve_lab.core.servables.tf_setup import import_tensorflow
from tfserve_lab.errors import ErrorCode, FailedPrecondition, InvalidArgument, TfServeError

__all__ = ["tf_error"]

_FUNCTION_NODE = re.compile(r"^\{\{function_node [^}]*\}\}\s*")
_OP_SUFFIX = re.compile(r"\s*\[Op:[^\]]*\](\s*name:.*)?$")
_ROOT_ERRORS = re.compile(r"\d+ root error\(s\) found\.")
_FIRST_ROOT_ERROR = re.compile(r"\s*\(0\) [A-Za-z_ ]+: (.*)")


def tf_error(exc: BaseException) -> TfServeError:
    """A TensorFlow error as TF Serving reports it: the op error's code and first line."""
    tf = import_tensorflow()
    if isinstance(exc, tf.errors.OpError):
        code, message = ErrorCode(exc.error_code), exc.message
    else:
        code, message = ErrorCode.INVALID_ARGUMENT, str(exc)
    first = _OP_SUFFIX.sub("", _FUNCTION_NODE.sub("", _headline(message))) or type(exc).__name__
    if code == ErrorCode.INVALID_ARGUMENT:
        return InvalidArgument(first)
    if code == ErrorCode.FAILED_PRECONDITION:
        return FailedPrecondition(first)
    return TfServeError(first, code=code)


def _headline(message: str) -> str:
    """The line that says what went wrong, past eager's "Graph execution error" trace or a root-error list."""
    lines = [line for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    if _ROOT_ERRORS.match(lines[0]):
        for line in lines[1:]:
            first_error = _FIRST_ROOT_ERROR.match(line)
            if first_error:
                return first_error.group(1)
    if lines[0].startswith("Graph execution error"):
        trace = ("Detected at node", "Node:", "<stack traces", "\t", " ")
        return next((line for line in lines[1:] if not line.startswith(trace)), lines[0])
    return lines[0]
