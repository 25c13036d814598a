"""Every reach of the facade into the engine's request path and routing state, one function each.

The rest of ``api`` reads and changes labels, splits, shadows and the shadow
log, and runs predicts, only through these, so a change of the engine's
interface is met here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from tfserve_lab.api.session import current, running_engine
from tfserve_lab.core.types import ModelSpec, PredictResult, RequestContext, SignatureInfo, TensorInfo
from tfserve_lab.errors import InvalidArgument

if TYPE_CHECKING:
    from tfserve_lab.core.engine import Engine
    from tfserve_lab.core.shadow import ShadowRecord

__all__ = [
    "inputs_for",
    "labels",
    "predict_outputs",
    "set_shadow",
    "set_split",
    "shadow_log",
    "signature",
    "split_weights",
]


def predict_outputs(spec: ModelSpec, data: Any) -> dict[str, np.ndarray]:
    """Every output, by alias, of one predict of ``data`` on the version and signature ``spec`` names."""

    async def run(engine: Engine) -> PredictResult:
        context = RequestContext("python", time.perf_counter())
        return await engine.predict(spec, _UserInputs(data, spec.signature_name), context=context)

    return current().call(run).outputs


class _UserInputs:
    """A predict's inputs as the user gave them (an array, or arrays by input name): the engine's decode step."""

    __slots__ = ("_data", "_signature_name")

    def __init__(self, data: Any, signature_name: str) -> None:
        self._data = data
        self._signature_name = signature_name

    def signature_name(self) -> str:
        return self._signature_name

    def inputs(self, key: str, signature: SignatureInfo | None) -> Mapping[str, np.ndarray]:
        # No signature ``key``: nothing to map onto; the engine refuses the request in TF Serving's words.
        return {} if signature is None else inputs_for(self._data, signature.inputs)


def signature(spec: ModelSpec) -> tuple[str, SignatureInfo]:
    """The key ("" is ``serving_default``) and the inputs and outputs of the signature ``spec`` names."""
    with running_engine().acquire(spec) as handle:
        return handle.signature(spec.signature_name)


def inputs_for(data: Any, inputs: Mapping[str, TensorInfo]) -> dict[str, np.ndarray]:
    """Map user data onto a signature's inputs: one array for one input, a dict by alias."""
    from tfserve_lab.core.dtypes import numpy_for_dt

    if isinstance(data, Mapping):
        values = dict(data)
    elif len(inputs) == 1:
        values = {next(iter(inputs)): data}
    else:
        raise InvalidArgument(
            f"The signature has {len(inputs)} inputs ({', '.join(sorted(inputs))}): pass a dict of arrays."
        )
    arrays = {}
    for alias, value in values.items():
        info = inputs.get(alias)
        dtype = numpy_for_dt(info.dtype) if info is not None and info.dtype != "DT_STRING" else None
        arrays[alias] = np.asarray(value, dtype=dtype)
    return arrays


def labels(name: str) -> dict[str, int]:
    """Model ``name``'s version labels."""
    return running_engine().labels(name)


def split_weights(name: str) -> dict[int, int]:
    """The weight by version of model ``name``'s traffic split (empty: no split)."""
    return running_engine().router.split(name)


def set_split(name: str, weights: Mapping[int, int] | None) -> None:
    """Split model ``name``'s unversioned requests by ``weights`` (None ends the split)."""
    from tfserve_lab.core.router import TrafficSplit

    running_engine().router.set_split(name, None if weights is None else TrafficSplit(dict(weights)))


def set_shadow(name: str, version: int | None) -> None:
    """Copy model ``name``'s live predicts to ``version`` (None ends it)."""
    running_engine().router.set_shadow(name, version)


def shadow_log(name: str) -> list[ShadowRecord]:
    """The recorded (live, shadow) answer pairs of model ``name``, oldest first."""
    return running_engine().shadow.records(name)
