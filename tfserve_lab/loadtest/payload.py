"""The one request a bench sends, built once: REST bytes of HTTP/1.1, or a serialized PredictRequest.

Inputs come from the user's data, or are made from the signature's dtypes
and shapes (``-1`` dimensions become the rows, or 1 past the first).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tfserve_lab.core.dtypes import numpy_for_dt
from tfserve_lab.core.types import SignatureInfo
from tfserve_lab.errors import InvalidArgument

__all__ = ["bench_inputs", "grpc_payload", "rest_payload"]


def bench_inputs(signature: SignatureInfo, rows: int, data: Any = None, *, seed: int = 0) -> dict[str, np.ndarray]:
    """``rows`` rows for every input: from ``data`` (an array for one input, a dict by input name), else made up."""
    if data is not None:
        given = dict(data) if isinstance(data, Mapping) else {_only_input(signature): data}
        out = {}
        for name, value in given.items():
            if name not in signature.inputs:
                raise InvalidArgument(f"{name!r} is not an input of the signature (it has {sorted(signature.inputs)}).")
            array = np.asarray(value)
            if signature.inputs[name].dtype != "DT_STRING" and array.dtype.kind in "biuf":
                array = array.astype(numpy_for_dt(signature.inputs[name].dtype), copy=False)
            if array.ndim == 0 or len(array) == 0:
                raise InvalidArgument(f"The data for {name!r} needs at least one row.")
            repeats = -(-rows // len(array))
            out[name] = np.concatenate([array] * repeats)[:rows] if repeats > 1 else array[:rows]
        return out
    rng = np.random.default_rng(seed)
    made = {}
    for name, info in signature.inputs.items():
        if info.shape is None:
            raise InvalidArgument(f"Input {name!r} has an unknown rank: pass the data to send (--data VAR).")
        shape = tuple(rows if i == 0 and size < 0 else max(size, 1) for i, size in enumerate(info.shape))
        made[name] = _values(info.dtype, shape, rng)
    return made


def _only_input(signature: SignatureInfo) -> str:
    if len(signature.inputs) != 1:
        raise InvalidArgument(f"The signature has inputs {sorted(signature.inputs)}: pass the data as a dict by name.")
    return next(iter(signature.inputs))


def _values(dtype: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if dtype == "DT_STRING":
        raise InvalidArgument("Cannot make up string inputs: pass the data to send (--data VAR).")
    target = numpy_for_dt(dtype)
    if target.kind == "b":
        return rng.random(shape) > 0.5
    if target.kind in "iu":
        return rng.integers(0, 10, shape).astype(target)
    return rng.random(shape).astype(target)


def rest_payload(
    host: str, port: int, path: str, inputs: Mapping[str, np.ndarray], auth_token: str = "", signature: str = ""
) -> bytes:
    """The whole HTTP/1.1 request: TF Serving's columnar body ``{"inputs": {...}}`` for ``path``."""
    import orjson

    document: dict[str, object] = {"inputs": dict(inputs)}
    if signature and signature != "serving_default":
        document = {"signature_name": signature, **document}
    body = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    auth = f"Authorization: Bearer {auth_token}\r\n" if auth_token else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n{auth}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def grpc_payload(model: str, version: int | None, signature: str, inputs: Mapping[str, np.ndarray]) -> bytes:
    """A serialized ``PredictRequest`` with the inputs in ``tensor_content``."""
    from tensorflow_serving.apis import predict_pb2

    from tfserve_lab.protocol.grpc.codec import fill_tensor_proto

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    request.model_spec.signature_name = signature
    for name, array in inputs.items():
        fill_tensor_proto(request.inputs[name], array, tensor_content=True)
    return bytes(request.SerializeToString())
