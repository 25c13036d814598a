"""Wire-neutral records that the engine takes and returns.

Protocol adapters decode REST JSON or gRPC protos into these, call the
engine, and encode the results back; nothing here knows either wire format.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from tfserve_lab.errors import ErrorCode

__all__ = [
    "ClassifyResult",
    "Dim",
    "MetadataResult",
    "ModelSpec",
    "PredictResult",
    "RegressResult",
    "RequestContext",
    "SignatureInfo",
    "TensorInfo",
    "VersionState",
    "VersionStatus",
]

DEFAULT_SIGNATURE = "serving_default"


class VersionState(enum.IntEnum):
    """ModelVersionStatus.State, with TF Serving's numbers."""

    UNKNOWN = 0
    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


@dataclass(frozen=True)
class ModelSpec:
    """Which servable a request wants: a model, then a version or a label."""

    name: str
    version: int | None = None
    label: str | None = None
    signature_name: str = ""


@dataclass(frozen=True)
class Dim:
    """One dimension of a TensorShapeProto; -1 means unknown size."""

    size: int
    name: str = ""


@dataclass(frozen=True)
class TensorInfo:
    """A signature's input or output: graph tensor name, DataType name, shape."""

    name: str
    dtype: str
    dims: tuple[Dim, ...] = ()
    unknown_rank: bool = False

    @property
    def shape(self) -> tuple[int, ...] | None:
        """The shape as sizes (-1 unknown), or None when the rank is unknown."""
        if self.unknown_rank:
            return None
        return tuple(d.size for d in self.dims)


@dataclass(frozen=True)
class SignatureInfo:
    """A SignatureDef: method name and named inputs and outputs."""

    method_name: str
    inputs: Mapping[str, TensorInfo]
    outputs: Mapping[str, TensorInfo]


@dataclass(frozen=True)
class VersionStatus:
    """One row of GetModelStatusResponse.model_version_status."""

    version: int
    state: VersionState
    error_code: ErrorCode = ErrorCode.OK
    error_message: str = ""


@dataclass(frozen=True)
class RequestContext:
    """Where a request came from and when, for metrics and routing."""

    protocol: str = "python"
    started: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PredictResult:
    """Outputs of one predict call and the servable that produced them."""

    model_name: str
    version: int
    signature_name: str
    outputs: dict[str, np.ndarray]


@dataclass(frozen=True)
class ClassifyResult:
    """Per-example classes (bytes, [n, k]) and scores (float, [n, k])."""

    model_name: str
    version: int
    signature_name: str
    classes: np.ndarray | None
    scores: np.ndarray | None


@dataclass(frozen=True)
class RegressResult:
    """Per-example regression values ([n])."""

    model_name: str
    version: int
    signature_name: str
    values: np.ndarray


@dataclass(frozen=True)
class MetadataResult:
    """The signature_def metadata of one servable version."""

    model_name: str
    version: int
    signatures: Mapping[str, SignatureInfo]
