"""Serving models from their repositories: deploy, undeploy, and predict in this process's engine."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tfserve_lab.api import engine_calls
from tfserve_lab.api.session import ModelStatus, current, model_status, running_engine
from tfserve_lab.config import ModelConfig, VersionPolicy
from tfserve_lab.core.types import ModelSpec
from tfserve_lab.errors import ErrorCode, TfServeError

if TYPE_CHECKING:
    from tfserve_lab.core.events import EngineEvent

__all__ = ["MODELS_DIR", "DeployResult", "Progress", "base_path_of", "deploy", "predict", "undeploy"]

# The folder holding one model repository (base path) per model, relative to the notebook.
MODELS_DIR = "models"
# A line of text saying where a long operation is, and the fraction done (None when not known).
Progress = Callable[[str, float | None], None]


@dataclass(frozen=True)
class DeployResult:
    """What ``deploy`` did: the model as it is served now, and a warning when nothing could load."""

    status: ModelStatus
    warning: str = ""


def base_path_of(name: str, models_dir: str, base_path: str | None) -> str:
    """Model ``name``'s base path: ``base_path`` when given, else ``models_dir/name``."""
    return base_path if base_path is not None else os.path.join(models_dir, name)


def deploy(
    name: str,
    base_path: str | None = None,
    *,
    models_dir: str = MODELS_DIR,
    policy: str | VersionPolicy | None = None,
    wait: bool = True,
    progress: Progress | None = None,
) -> DeployResult:
    """Serve model ``name`` from its base path and keep watching it for new versions.

    Args:
        name: The model's name, as clients will call it.
        base_path: TF Serving's base_path: the folder that holds the numeric version folders
            (default ``models_dir/name``).
        models_dir: The folder that holds one base path per model.
        policy: ``latest:N``, ``all``, ``specific:V1,V2`` (default: the latest version).
        wait: Return once the versions the policy asks for are AVAILABLE or failed; otherwise at once.
        progress: Called with a line of text and the fraction done (None: not known) as versions
            load and warm up.

    Raises:
        TfServeError: NOT_FOUND when the base path does not exist, or the load error when no
            version of the model could be loaded.
    """
    from tfserve_lab.core.repository import aspired_versions, list_versions

    parsed = VersionPolicy.parse(policy) if isinstance(policy, str) else policy or VersionPolicy()
    path = os.path.abspath(base_path_of(name, models_dir, base_path))
    if not os.path.isdir(path):
        raise TfServeError(f"Could not find base path {path} for servable {name}.", code=ErrorCode.NOT_FOUND)
    session = current()
    engine = running_engine()
    existing = next((m for m in engine.models() if m.name == name), None)
    labels = dict(existing.version_labels) if existing is not None else {}
    # A model deployed again keeps its labels and its request logging.
    config = ModelConfig(
        name,
        path,
        version_policy=parsed,
        version_labels=labels,
        logging=existing.logging if existing is not None else None,
    )
    aspired = sorted(aspired_versions(list_versions(path), parsed))
    warning = "" if aspired else _no_versions_warning(name, path)
    if not wait:
        threading.Thread(target=session.deploy, args=(config,), name="tfserve-deploy", daemon=True).start()
        return DeployResult(_model_status_or_pending(name, config), warning)
    observe = _progress_observer(name, progress)
    engine.add_observer(observe)
    try:
        session.deploy(config)  # blocks until the aspired versions loaded or failed
    finally:
        engine.remove_observer(observe)
    served = model_status(name)
    failed = [v for v in served.versions if v.version in aspired and v.state.name != "AVAILABLE" and v.error_message]
    if aspired and len(failed) == len(aspired):
        raise TfServeError(
            f"{name} version {failed[0].version} failed to load: {failed[0].error_message}", code=failed[0].error_code
        )
    return DeployResult(served, warning)


def _progress_observer(name: str, progress: Progress | None) -> Callable[[EngineEvent], None]:
    """An engine observer that reports model ``name``'s loading and warm-up steps to ``progress``."""
    from tfserve_lab.core.events import LoadProgress, VersionChanged

    def observe(event: EngineEvent) -> None:
        if progress is None or getattr(event, "model", None) != name:
            return
        if isinstance(event, LoadProgress):
            progress(
                f"{name} version {event.version}: {event.stage} {event.done}/{event.total}",
                event.done / event.total if event.total else None,
            )
        elif isinstance(event, VersionChanged) and event.state.name in ("LOADING", "AVAILABLE"):
            progress(f"{name} version {event.version}: {event.state.name}", None)

    return observe


def _no_versions_warning(name: str, path: str) -> str:
    """TF Serving's words for a base path without version folders, and where the versions are when we can tell."""
    from tfserve_lab.core.repository import list_versions
    from tfserve_lab.core.watcher import no_versions_message

    message = no_versions_message(name, path)
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return f"{message} {path} is itself a SavedModel: put it in a numbered folder such as {path}/1."
    candidates = sorted(entry.path for entry in os.scandir(path) if entry.is_dir() and list_versions(entry.path))
    if candidates:
        return f"{message} Did you mean {os.path.relpath(candidates[0])}?"
    return message


def _model_status_or_pending(name: str, config: ModelConfig) -> ModelStatus:
    try:
        return model_status(name)
    except TfServeError:
        return ModelStatus(name, config.base_path, config.version_policy.describe(), dict(config.version_labels), ())


def undeploy(name: str, version: int | None = None) -> None:
    """Stop serving a model, or one of its versions."""
    current().undeploy(name, version)


def predict(
    name: str,
    data: Any,
    *,
    version: int | None = None,
    label: str | None = None,
    signature: str = "",
) -> np.ndarray | dict[str, np.ndarray]:
    """Run a model in this process's engine: an array for one output, a dict for several."""
    outputs = engine_calls.predict_outputs(ModelSpec(name, version, label, signature), data)
    if len(outputs) == 1:
        return next(iter(outputs.values()))
    return outputs
