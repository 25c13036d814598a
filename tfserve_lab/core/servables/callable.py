"""CallableServable: a Python function served as a model (tests, demos, docs)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from tfserve_lab.core.dtypes import dt_for_numpy
from tfserve_lab.core.types import Dim, SignatureInfo, TensorInfo
from tfserve_lab.errors import InvalidArgument

__all__ = ["CallableServable", "tensor_info"]

Function = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


def tensor_info(name: str, dtype: str | np.dtype = "DT_FLOAT", shape: Sequence[int] | None = (-1, 1)) -> TensorInfo:
    """A TensorInfo from a short description."""
    dt = dtype if isinstance(dtype, str) else dt_for_numpy(np.dtype(dtype))
    if shape is None:
        return TensorInfo(name, dt, (), unknown_rank=True)
    return TensorInfo(name, dt, tuple(Dim(int(s)) for s in shape))


class CallableServable:
    """Serves Python functions under SignatureInfos; checks aliases like a real servable."""

    def __init__(self, signatures: Mapping[str, tuple[SignatureInfo, Function]]) -> None:
        self._functions = {key: fn for key, (_, fn) in signatures.items()}
        self._signatures = {key: info for key, (info, _) in signatures.items()}
        self.calls: list[tuple[str, dict[str, np.ndarray]]] = []
        self.closed = False

    @property
    def signatures(self) -> Mapping[str, SignatureInfo]:
        """SignatureInfos by key."""
        return self._signatures

    def run(
        self,
        signature_name: str,
        inputs: Mapping[str, np.ndarray],
        output_keys: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Call the signature's function with inputs cast to the declared dtypes."""
        info = self._signatures[signature_name]
        for alias in inputs:
            if alias not in info.inputs:
                raise InvalidArgument(
                    f"input tensor alias not found in signature: {alias}. "
                    f"Inputs expected to be in the set {{{','.join(sorted(info.inputs))}}}."
                )
        self.calls.append((signature_name, dict(inputs)))
        outputs = {k: np.asarray(v) for k, v in self._functions[signature_name](inputs).items()}
        if output_keys:
            outputs = {k: outputs[k] for k in output_keys}
        return outputs

    def close(self) -> None:
        """Mark closed (tests check unloads close their servables)."""
        self.closed = True
