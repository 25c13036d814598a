"""Model status and metadata JSON, printed as TF Serving prints them with protobuf's JSON printer.

TF Serving answers ``GET /v1/models/...`` with ``MessageToJsonString`` of the
gRPC response (``add_whitespace``, ``always_print_primitive_fields``; see
``model_servers/http_rest_api_util.cc``): one-space indents, a trailing
newline, int64 fields as strings, enums by name, unset oneof fields left out
and set ones written after the other fields. The metadata answer is glued
together from two printer calls (``model_spec`` and the ``SignatureDefMap``),
which gives its odd first lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from tfserve_lab.core.types import SignatureInfo, TensorInfo, VersionState, VersionStatus

__all__ = ["encode_model_metadata", "encode_model_status"]

# protobuf's JsonEscaping: controls, '"', '\\', '<', '>', DEL, C1 controls and a few invisible
# code points; bytes that are not UTF-8 (surrogate-escaped here) are dropped.
_ESCAPED = re.compile(
    '[\x00-\x1f"<>\\\\\x7f-\x9f\xad\u0600-\u0603\u06dd\u070f\u17b4\u17b5\u200b-\u200f\u2028-\u202e'
    "\u2060-\u2064\u206a-\u206f\ufeff\ufff9-\ufffb\udc80-\udcff\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)
_SHORT = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _SHORT:
        return _SHORT[char]
    if 0xDC80 <= code <= 0xDCFF:
        return ""
    if code > 0xFFFF:
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def _string(text: str) -> str:
    return '"' + _ESCAPED.sub(_escape_char, text) + '"'


def _write(value: Any, level: int, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif not value:
        out.append("{}" if isinstance(value, Mapping) else "[]")
    else:
        keyed = isinstance(value, Mapping)
        indent = "\n" + " " * (level + 1)
        out.append("{" if keyed else "[")
        for index, item in enumerate(value.items() if keyed else value):
            out.append(("," if index else "") + indent)
            if keyed:
                out.append(_string(item[0]) + ": ")
                item = item[1]
            _write(item, level + 1, out)
        out.append("\n" + " " * level + ("}" if keyed else "]"))


def _to_json(message: Mapping[str, Any]) -> str:
    """One ``MessageToJsonString`` call: the root object and its trailing newline."""
    out: list[str] = []
    _write(message, 0, out)
    return "".join(out) + "\n"


def encode_model_status(statuses: Iterable[VersionStatus]) -> bytes:
    """The body of ``GET /v1/models/NAME[/versions/N]``: ``GetModelStatusResponse`` as JSON.

    Args:
        statuses: One entry per version, in the order to report.

    Returns:
        ``{"model_version_status": [{"version": "123", "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""}}]}`` in protobuf's layout.
    """
    rows = [
        {
            "version": str(status.version),
            "state": VersionState(status.state).name,
            "status": {"error_code": status.error_code.name, "error_message": status.error_message},
        }
        for status in statuses
    ]
    return _to_json({"model_version_status": rows}).encode("utf-8", "surrogateescape")


def _tensor_info(info: TensorInfo) -> dict[str, Any]:
    shape = {"dim": [{"size": str(dim.size), "name": dim.name} for dim in info.dims], "unknown_rank": info.unknown_rank}
    fields: dict[str, Any] = {"dtype": info.dtype, "tensor_shape": shape}
    if info.name:
        # ``name`` is in the ``encoding`` oneof: printed last, and only when set.
        fields["name"] = info.name
    return fields


def _signature_def(signature: SignatureInfo) -> dict[str, Any]:
    return {
        "inputs": {alias: _tensor_info(info) for alias, info in signature.inputs.items()},
        "outputs": {alias: _tensor_info(info) for alias, info in signature.outputs.items()},
        "method_name": signature.method_name,
        "defaults": {},
    }


def encode_model_metadata(model_name: str, version: int, signatures: Mapping[str, SignatureInfo]) -> bytes:
    """The body of ``GET /v1/models/NAME[...]/metadata`` (``signature_def`` metadata only).

    Every signature carries ``"defaults": {}`` (SignatureDef field 4, an empty
    map that ``always_print_primitive_fields`` prints). The shared TF2 testdata
    file lacks it only for ``__saved_model_init_op`` because upstream added the
    key to that file by hand when the field appeared (its earlier revision has
    no ``defaults`` anywhere); TF Serving's tests compare it as parsed JSON.

    Args:
        model_name: The model's name, echoed in ``model_spec``.
        version: The version that answered.
        signatures: Signature key -> signature, in the order to print.

    Returns:
        The JSON text TF Serving writes (``ToJsonString`` in ``http_rest_api_util.cc``).
    """
    spec = {"name": model_name, "signature_name": "", "version": str(version)}
    defs = {"signature_def": {key: _signature_def(signature) for key, signature in signatures.items()}}
    text = f'{{\n"model_spec":{_to_json(spec)},\n"metadata": {{"signature_def": {_to_json(defs)}}}\n}}\n'
    return text.encode("utf-8", "surrogateescape")
