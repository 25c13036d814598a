"""The decode step the engine asks of a request: the signature it names, then its inputs for that signature.

Each protocol adapter wraps its wire body in a decoder and hands it to the
engine, which calls them in TF Serving's order: the signature name first
(REST parses its JSON here, before the model lookup, as
``FillPredictRequestFromJson`` does), then, holding the version's lease, the
inputs. Whatever either step raises is counted as the request's outcome.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from tfserve_lab.core.types import SignatureInfo

__all__ = ["ArrayInputs", "ExampleList", "ExamplesDecoder", "PredictDecoder"]


class PredictDecoder(Protocol):
    """A predict request's inputs, decoded against the signature they are for."""

    def signature_name(self) -> str:
        """The signature the request names ("" for the default)."""
        ...

    def inputs(self, key: str, signature: SignatureInfo | None) -> Mapping[str, np.ndarray]:
        """The named input arrays for ``signature`` (None: the model has no signature ``key``).

        A protocol that needs the signature to parse its body refuses a missing one here, in its own
        words; the others may decode anyway and leave the refusal to the engine.
        """
        ...


class ExamplesDecoder(Protocol):
    """A classify, regress or multi-inference request's serialized tf.Examples."""

    def signature_name(self) -> str:
        """The signature the request names ("" for the default)."""
        ...

    def examples(self) -> Sequence[bytes]:
        """The serialized tf.Example protos, one per row."""
        ...


class ArrayInputs:
    """A predict request that is already arrays (the Python API and tests): decoding is the identity."""

    __slots__ = ("_inputs", "_signature_name")

    def __init__(self, inputs: Mapping[str, np.ndarray], signature_name: str = "") -> None:
        self._inputs = inputs
        self._signature_name = signature_name

    def signature_name(self) -> str:
        return self._signature_name

    def inputs(self, key: str, signature: SignatureInfo | None) -> Mapping[str, np.ndarray]:
        return self._inputs


class ExampleList:
    """Serialized tf.Examples already in hand (the Python API and tests)."""

    __slots__ = ("_examples", "_signature_name")

    def __init__(self, examples: Sequence[bytes], signature_name: str = "") -> None:
        self._examples = examples
        self._signature_name = signature_name

    def signature_name(self) -> str:
        return self._signature_name

    def examples(self) -> Sequence[bytes]:
        return self._examples
