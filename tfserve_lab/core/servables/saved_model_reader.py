"""Reading a SavedModel's proto: meta graphs by tag set and their signatures (no graph loading)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from tfserve_lab.core.dtypes import DT_NAME
from tfserve_lab.core.types import Dim, SignatureInfo, TensorInfo
from tfserve_lab.errors import ErrorCode, TfServeError

__all__ = ["find_meta_graph", "read_saved_model", "signatures_of", "tensor_info_from_proto"]


def read_saved_model(path: str) -> Any:
    """The SavedModel proto of a version folder (saved_model.pb or .pbtxt)."""
    from google.protobuf import message, text_format
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    pb, pbtxt = os.path.join(path, "saved_model.pb"), os.path.join(path, "saved_model.pbtxt")
    try:
        if os.path.isfile(pb):
            with open(pb, "rb") as f:
                proto.ParseFromString(f.read())
        elif os.path.isfile(pbtxt):
            with open(pbtxt, encoding="utf-8") as f:
                text_format.Parse(f.read(), proto)
        else:
            raise TfServeError(
                f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {path}. Check "
                "that the directory exists and that you have the right permissions for accessing it.",
                code=ErrorCode.NOT_FOUND,
            )
    except (message.DecodeError, text_format.ParseError, UnicodeDecodeError) as exc:
        name, kind = (pb, "binary") if os.path.isfile(pb) else (pbtxt, "text")
        raise TfServeError(f"Can't parse {name} as {kind} proto", code=ErrorCode.DATA_LOSS) from exc
    except OSError as exc:  # unreadable, or removed while we looked
        code = ErrorCode.PERMISSION_DENIED if isinstance(exc, PermissionError) else ErrorCode.UNKNOWN
        raise TfServeError(f"{exc.filename}; {exc.strerror}", code=code) from exc
    return proto


def find_meta_graph(proto: Any, tags: Sequence[str]) -> Any:
    """The MetaGraphDef whose tag set is exactly ``tags``."""
    for meta_graph in proto.meta_graphs:
        if set(meta_graph.meta_info_def.tags) == set(tags):
            return meta_graph
    raise TfServeError(
        f"Could not find meta graph def matching supplied tags: {{ {' '.join(dict.fromkeys(tags))} }}. To "
        "inspect available tag-sets in the SavedModel, please use the SavedModel CLI: `saved_model_cli`",
        code=ErrorCode.NOT_FOUND,
    )


def tensor_info_from_proto(proto: Any) -> TensorInfo:
    """A TensorInfo proto (tensorflow/core/protobuf/meta_graph.proto) as our TensorInfo."""
    from tensorflow.core.framework import types_pb2

    try:
        dtype = types_pb2.DataType.Name(proto.dtype)
    except ValueError:
        dtype = DT_NAME.get(proto.dtype, "DT_INVALID")
    dims = tuple(Dim(int(d.size), d.name) for d in proto.tensor_shape.dim)
    return TensorInfo(proto.name, dtype, dims, bool(proto.tensor_shape.unknown_rank))


def signatures_of(meta_graph: Any) -> dict[str, SignatureInfo]:
    """Every SignatureDef of a meta graph as SignatureInfo."""
    return {
        key: SignatureInfo(
            method_name=sig.method_name,
            inputs={alias: tensor_info_from_proto(t) for alias, t in sig.inputs.items()},
            outputs={alias: tensor_info_from_proto(t) for alias, t in sig.outputs.items()},
        )
        for key, sig in meta_graph.signature_def.items()
    }
