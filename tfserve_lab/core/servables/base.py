"""The Servable protocol: what the engine needs from a loaded model version."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from tfserve_lab.core.types import SignatureInfo

__all__ = ["Servable", "ServableLoader"]


@runtime_checkable
class Servable(Protocol):
    """A loaded model version.

    ``run`` blocks (TensorFlow releases the GIL while it computes); the engine
    calls it on its batch threads, or on its event loop when calls are measured
    under a millisecond (``core/call_costs.py``).
    """

    @property
    def signatures(self) -> Mapping[str, SignatureInfo]:
        """SignatureDefs by key, as the SavedModel declares them."""
        ...

    def run(
        self,
        signature_name: str,
        inputs: Mapping[str, np.ndarray],
        output_keys: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Run one signature on inputs keyed by alias; return outputs by alias."""
        ...

    def close(self) -> None:
        """Release the model's resources; the servable is not used afterwards."""
        ...


class ServableLoader(Protocol):
    """Loads the servable in one version folder (blocking, on a load thread)."""

    def __call__(self, path: str) -> Servable: ...
