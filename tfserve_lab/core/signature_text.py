"""A SignatureDef as protobuf text (``DebugString``), for TF Serving's errors that quote one."""

from __future__ import annotations

import json

from tfserve_lab.core.types import SignatureInfo, TensorInfo

__all__ = ["signature_debug_string", "tensor_shape_string"]


def tensor_shape_string(shape: tuple[int, ...]) -> str:
    """``TensorShape::DebugString``: ``[2,3]``, ``?`` for an unknown size."""
    return "[" + ",".join("?" if size < 0 else str(size) for size in shape) + "]"


def signature_debug_string(signature: SignatureInfo) -> str:
    """The text C++ ``SignatureDef::DebugString()`` prints: fields in declaration order, map keys sorted."""
    lines: list[str] = []
    for field, tensors in (("inputs", signature.inputs), ("outputs", signature.outputs)):
        for key in sorted(tensors):
            lines += [f"{field} {{", f"  key: {_quote(key)}", "  value {"]
            lines += ["    " + line for line in _tensor_info_lines(tensors[key])]
            lines += ["  }", "}"]
    if signature.method_name:
        lines.append(f"method_name: {_quote(signature.method_name)}")
    return "\n".join(lines) + "\n"


def _tensor_info_lines(info: TensorInfo) -> list[str]:
    lines = [f"name: {_quote(info.name)}"] if info.name else []
    lines.append(f"dtype: {info.dtype}")
    if info.unknown_rank:
        return [*lines, "tensor_shape {", "  unknown_rank: true", "}"]
    lines.append("tensor_shape {")
    for dim in info.dims:
        lines += ["  dim {", f"    size: {dim.size}"]
        if dim.name:
            lines.append(f"    name: {_quote(dim.name)}")
        lines.append("  }")
    return [*lines, "}"]


def _quote(text: str) -> str:
    # Names are identifiers and method names paths: JSON quoting matches text format for them.
    return json.dumps(text)
