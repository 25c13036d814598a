"""Which version serves a request that names none: weighted splits and the model-version header.

Explicit ``/versions/N`` and ``/labels/L`` requests are never re-routed. A
``model-version`` header (HTTP) or metadata key (gRPC) pins the version, as the
TF Serving tutorial's Istio rule does: ``1``, the tutorial's ``v1`` (either
case), or one of the model's version labels; otherwise a split's weights
decide, and without a split the newest AVAILABLE version serves, as in TF Serving.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tfserve_lab.core.types import ModelSpec
from tfserve_lab.errors import InvalidArgument

__all__ = ["VERSION_HEADER", "VERSION_HEADER_VALUE", "Router", "TrafficSplit"]

VERSION_HEADER = "model-version"
# A version as the header gives it: the number or the tutorial's vN, without leading zeros, so that one
# Istio regex per version (``^[vV]?N$``) matches exactly the values that pin N here.
VERSION_HEADER_VALUE = re.compile(r"[vV]?(0|[1-9][0-9]*)")


@dataclass(frozen=True)
class TrafficSplit:
    """Percent of unversioned traffic per version (weights need not sum to 100; they are relative)."""

    weights: Mapping[int, int]

    def __post_init__(self) -> None:
        if not self.weights:
            raise InvalidArgument("A traffic split needs at least one version.")
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise InvalidArgument("Split weights must be non-negative and not all zero.")


class Router:
    """Per-model splits and shadows; picks the version for each unversioned request."""

    def __init__(self, seed: int | None = None, labels: Callable[[str], Mapping[str, int]] | None = None) -> None:
        # A model's version labels, for header values that name one (the registry's, in the engine).
        self._labels = labels
        self._lock = threading.Lock()
        self._splits: dict[str, TrafficSplit] = {}
        self._shadows: dict[str, int] = {}
        self._random = random.Random(seed)

    def set_split(self, model: str, split: TrafficSplit | None) -> None:
        """Route ``model``'s unversioned traffic by weight (None ends the split)."""
        with self._lock:
            if split is None:
                self._splits.pop(model, None)
            else:
                self._splits[model] = split

    def split(self, model: str) -> dict[int, int]:
        """The weights in force for ``model`` (empty when none)."""
        with self._lock:
            split = self._splits.get(model)
            return dict(split.weights) if split else {}

    def set_shadow(self, model: str, candidate: int | None) -> None:
        """Copy ``model``'s live traffic to ``candidate`` too (None ends shadowing)."""
        with self._lock:
            if candidate is None:
                self._shadows.pop(model, None)
            else:
                self._shadows[model] = candidate

    def shadow(self, model: str) -> int | None:
        """The shadow candidate of ``model``, if any."""
        return self._shadows.get(model)  # one dict read, atomic under the GIL; writers take the lock

    def route(self, spec: ModelSpec, headers: Mapping[str, str] | None = None) -> ModelSpec:
        """The spec with a version filled in when routing applies, else unchanged."""
        if spec.version is not None or spec.label is not None:
            return spec
        # `in` first: tornado's HTTPHeaders.get raises and catches KeyError on a miss.
        if headers and VERSION_HEADER in headers:
            pinned = headers[VERSION_HEADER]
            if pinned:
                return self._pinned(spec, pinned)
        if spec.name not in self._splits:  # the common case, read without the lock (atomic under the GIL)
            return spec
        with self._lock:
            split = self._splits.get(spec.name)
            if split is None:
                return spec
            versions = list(split.weights)
            chosen = self._random.choices(versions, weights=[split.weights[v] for v in versions])[0]
        return ModelSpec(spec.name, chosen, None, spec.signature_name)

    def _pinned(self, spec: ModelSpec, value: str) -> ModelSpec:
        """The spec a ``model-version`` header value pins: a version, or a label of the model."""
        number = VERSION_HEADER_VALUE.fullmatch(value)
        if number is not None:
            return ModelSpec(spec.name, int(number.group(1)), None, spec.signature_name)
        if self._labels is not None and value in self._labels(spec.name):
            return ModelSpec(spec.name, None, value, spec.signature_name)
        raise InvalidArgument(
            f"Header {VERSION_HEADER} must be a version (1 or v1) or a version label of model {spec.name}, "
            f"got {value!r}"
        )
