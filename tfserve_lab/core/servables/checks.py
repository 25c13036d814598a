"""Request checks of TF Serving's predict_util.cc and GetInputValues, shared by the SavedModel and TF Lite servables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tfserve_lab.core.dtypes import numpy_for_dt
from tfserve_lab.core.types import DEFAULT_SIGNATURE, SignatureInfo
from tfserve_lab.errors import FailedPrecondition, InvalidArgument

__all__ = ["bind_inputs", "coerce", "find_signature", "select_outputs"]


def find_signature(signatures: Mapping[str, SignatureInfo], name: str) -> SignatureInfo:
    """The signature a request names ("" is serving_default); FailedPrecondition when absent."""
    key = name or DEFAULT_SIGNATURE
    signature = signatures.get(key)
    if signature is None:
        raise FailedPrecondition(f'Serving signature key "{key}" not found.')
    return signature


def bind_inputs(
    signature: SignatureInfo,
    inputs: Mapping[str, Any],
    defaults: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Inputs by alias in sorted order, defaults filled and cast to the signature dtypes."""
    defaults = defaults or {}
    wanted = signature.inputs
    if len(inputs) > len(wanted) or (len(inputs) < len(wanted) and not defaults):
        sent, known = set(inputs), set(wanted)
        raise InvalidArgument(
            f"input size does not match signature: {len(inputs)}!={len(wanted)} "
            f"len({{{_join(sent)}}}) != len({{{_join(known)}}}). "
            f"Sent extra: {{{_join(sent - known)}}}. Missing but required: {{{_join(known - sent)}}}."
        )
    bound: dict[str, np.ndarray] = {}
    used = 0
    for alias in sorted(wanted):
        info = wanted[alias]
        if alias in inputs:
            value, used = inputs[alias], used + 1
        elif alias in defaults:
            value = defaults[alias]
        else:
            raise InvalidArgument(
                f"Signature input alias: {alias}(feed name: {info.name}) not found in request and no default "
                f"value provided. Inputs expected to be in the request {{{_join(inputs)}}}, or default input "
                f"alias set: {_join(defaults)}"
            )
        bound[alias] = coerce(value, info.dtype)
    if inputs and used != len(inputs):
        raise InvalidArgument(
            f"Inputs contains invalid name. Used request inputs: {_join(set(inputs) & set(wanted))}, "
            f"request input: {_join(inputs)}"
        )
    return bound


def select_outputs(signature: SignatureInfo, output_keys: Sequence[str] | None) -> tuple[str, ...]:
    """The output aliases to fetch: the filter, checked, or every output."""
    if not output_keys:
        return tuple(signature.outputs)
    seen: set[str] = set()
    for alias in output_keys:
        if alias not in signature.outputs:
            raise InvalidArgument(
                f"output tensor alias not found in signature: {alias} "
                f"Outputs expected to be in the set {{{_join(signature.outputs)}}}."
            )
        if alias in seen:
            raise InvalidArgument(f"duplicate output tensor alias: {alias}")
        seen.add(alias)
    return tuple(output_keys)


def coerce(value: Any, dtype: str) -> np.ndarray:
    """Cast to the signature dtype where no value changes meaning (JSON numbers arrive as float64/int64)."""
    array = np.asarray(value)
    try:
        target = numpy_for_dt(dtype.removesuffix("_REF"))
    except KeyError:
        return array
    source = array.dtype
    if source == target:
        return array
    if target.kind == "O":
        if source.kind == "U":
            return np.char.encode(array, "utf-8").astype(object)
        return array.astype(object) if source.kind == "S" else array
    if source.kind in "iu" and target.kind in "iu":
        if not np.can_cast(source, target, "safe"):
            info = np.iinfo(target)
            if array.size and (array.min() < info.min or array.max() > info.max):
                return array  # out of range: TensorFlow reports the dtype mismatch
        return array.astype(target)
    if source.kind in "iuf" and target.kind in "fc":
        return array.astype(target)
    return array


def _join(names: Any) -> str:
    return ",".join(sorted(names))
