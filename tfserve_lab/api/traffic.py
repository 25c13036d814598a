"""Which versions answer a model's traffic: version labels, weighted splits, shadow copies, and labels to versions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from tfserve_lab.api import engine_calls
from tfserve_lab.api.session import current, model_status, require_model, running_engine
from tfserve_lab.errors import ErrorCode, InvalidArgument, TfServeError
from tfserve_lab.version_syntax import version_or_label

if TYPE_CHECKING:
    from tfserve_lab.api.session import ModelStatus
    from tfserve_lab.core.shadow import ShadowRecord

__all__ = ["label", "resolve_version", "shadow", "shadow_records", "split", "split_weights"]


def resolve_version(name: str, version: int | str) -> int:
    """The version number that ``version`` (a number, a string of digits or a label of ``name``) stands for.

    Raises:
        ServableNotFound: For a label, when no model ``name`` is served (a number is taken as it is).
        InvalidArgument: In TF Serving's words, for a label ``name`` does not have.
    """
    key = version_or_label(version) if isinstance(version, str) else version
    if isinstance(key, int):
        return key
    labels = engine_calls.labels(name)
    if key not in labels:
        raise InvalidArgument(f"Unrecognized servable version label: {key}")
    return labels[key]


def label(name: str, labels: Mapping[str, int]) -> ModelStatus:
    """Point labels (``{"stable": 1, "canary": 2}``) at AVAILABLE versions of a model."""
    session = current()
    session.set_labels(name, {**engine_calls.labels(name), **labels})
    return model_status(name)


def split(name: str, weights: Mapping[int | str, int] | None) -> dict[int, int]:
    """Route requests for ``name`` that name no version by weight (``{1: 90, 2: 10}``; labels work too).

    None ends the split. Explicit versions and labels are never re-routed; a ``model-version``
    header pins a version.

    Returns:
        The weight by version number now in force.
    """
    require_model(name)
    if weights is None:
        engine_calls.set_split(name, None)
        return {}
    available = {s.version for s in running_engine().status(name) if s.state.name == "AVAILABLE"}
    resolved: dict[int, int] = {}
    for key, weight in weights.items():
        version = resolve_version(name, key)
        if version not in available:
            raise TfServeError(
                f"Version {version} of {name} is not AVAILABLE; split only between served versions.",
                code=ErrorCode.FAILED_PRECONDITION,
            )
        resolved[version] = int(weight)
    engine_calls.set_split(name, resolved)
    return resolved


def split_weights(name: str) -> dict[int, int]:
    """The weight by version of the split of ``name``'s unversioned requests in force (empty: none)."""
    return engine_calls.split_weights(name)


def shadow(name: str, candidate: int | str | None) -> int | None:
    """Also send a copy of ``name``'s live predict traffic to ``candidate`` (None ends it); answers are recorded.

    Returns:
        The candidate's version number (None when shadowing ended).
    """
    if candidate is None:
        engine_calls.set_shadow(name, None)
        return None
    require_model(name)
    version = resolve_version(name, candidate)
    engine_calls.set_shadow(name, version)
    return version


def shadow_records(name: str) -> list[ShadowRecord]:
    """The recorded (live, shadow) answer pairs of a model, oldest first."""
    return engine_calls.shadow_log(name)
