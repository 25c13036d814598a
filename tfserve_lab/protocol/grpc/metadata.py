"""SignatureInfo <-> TF's SignatureDef protos, for GetModelMetadata."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tfserve_lab.core.dtypes import DT_NUMBER
from tfserve_lab.core.types import SignatureInfo, TensorInfo

__all__ = ["signature_def_map"]


def _fill_tensor_info(proto: Any, info: TensorInfo) -> None:
    proto.name = info.name
    proto.dtype = DT_NUMBER.get(info.dtype, 0)
    if info.unknown_rank:
        proto.tensor_shape.unknown_rank = True
        return
    proto.tensor_shape.SetInParent()
    for dim in info.dims:
        proto.tensor_shape.dim.add(size=dim.size, name=dim.name)


def signature_def_map(signatures: Mapping[str, SignatureInfo]) -> Any:
    """A ``tensorflow.serving.SignatureDefMap`` holding every signature."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    message = get_model_metadata_pb2.SignatureDefMap()
    for key, signature in signatures.items():
        proto = message.signature_def[key]
        proto.method_name = signature.method_name
        for alias, info in signature.inputs.items():
            _fill_tensor_info(proto.inputs[alias], info)
        for alias, info in signature.outputs.items():
            _fill_tensor_info(proto.outputs[alias], info)
    return message
