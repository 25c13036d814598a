"""SavedModels on disk: export a Keras/TF model as the next version, inspect a model's tag sets and signatures."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from tfserve_lab.api.models import MODELS_DIR, Progress, base_path_of
from tfserve_lab.api.session import status
from tfserve_lab.errors import ErrorCode, TfServeError

if TYPE_CHECKING:
    from tfserve_lab.export import ExportResult, SavedModelInfo

__all__ = ["export", "inspect"]


def export(
    model: Any,
    name: str,
    *,
    models_dir: str = MODELS_DIR,
    base_path: str | None = None,
    version: int | None = None,
    warmup: Any = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Write a Keras/TF model as the next version (or ``version``) of model ``name``.

    Args:
        model: A Keras 3 model, a ``tf.Module`` or a ``tf.function`` with a signature.
        name: The model's name.
        models_dir: The folder that holds one base path per model: the version goes to
            ``models_dir/name/N``.
        base_path: TF Serving's base_path, the folder that holds the numeric version folders
            (instead of ``models_dir/name``).
        version: The version number; the next free one when None.
        warmup: Sample input written as TF Serving warmup records.
        progress: Called with a line of text and the fraction done as the export advances.
    """
    from tfserve_lab.export import export_model

    return export_model(
        model,
        name,
        base_path=base_path_of(name, models_dir, base_path),
        version=version,
        warmup=warmup,
        progress=progress,
    )


def inspect(
    target: str, *, version: int | None = None, models_dir: str = MODELS_DIR, base_path: str | None = None
) -> SavedModelInfo:
    """Tag sets and signatures of a SavedModel: a served model's, ``models_dir/NAME``'s, or a folder's.

    ``target`` is a model name (served, or a folder under ``models_dir``), a base path with numeric
    version folders (the newest version, or ``version``), or a SavedModel folder itself.
    """
    from tfserve_lab.core.repository import list_versions
    from tfserve_lab.export import inspect_saved_model

    path = base_path or target
    if base_path is None and not os.path.isdir(path):
        served = {m.name: m.base_path for m in status().models}
        path = served.get(target, os.path.join(models_dir, target))
    if not os.path.isdir(path):
        raise TfServeError(f"No SavedModel or model named {target!r} (looked in {path}).", code=ErrorCode.NOT_FOUND)
    versions = list_versions(path)
    if versions and not os.path.exists(os.path.join(path, "saved_model.pb")):
        chosen = version if version is not None else max(versions)
        if chosen not in versions:
            raise TfServeError(f"{path} has no version {chosen} (it has {sorted(versions)}).", code=ErrorCode.NOT_FOUND)
        path = versions[chosen]
    return inspect_saved_model(path)
