"""The version loader the server uses: ``model.tflite`` or the SavedModel, with TF Serving's loading flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from tfserve_lab.core.servables.base import Servable
from tfserve_lab.core.servables.saved_model import RunnerKind, load_saved_model
from tfserve_lab.core.servables.tf_setup import SessionOptions
from tfserve_lab.core.servables.tflite import TFLITE_FILE, load_tflite_model

__all__ = ["LoadOptions", "load_version"]


@dataclass(frozen=True)
class LoadOptions:
    """How ``load_version`` loads a version folder (TF Serving's loading flags)."""

    tags: tuple[str, ...] = ("serve",)
    prefer_tflite: bool = False
    session: SessionOptions = field(default_factory=SessionOptions)
    warmup: bool = True
    num_request_iterations_for_warmup: int = 0
    runner: RunnerKind = "auto"
    # --num_tflite_pools: interpreters in a TF Lite model's pool (None: one per CPU).
    tflite_interpreters: int | None = None


def load_version(path: str, options: LoadOptions | None = None) -> Servable:
    """Load one version folder: ``model.tflite`` when preferred and present, else the SavedModel.

    Args:
        path: The version folder.
        options: Tags, TFLite preference, session settings and warmup flags.

    Returns:
        A ``TfLiteServable`` or a ``SavedModelServable``.

    Raises:
        TfServeError: NOT_FOUND when the folder holds no SavedModel (yet), or the load's error.
    """
    options = options or LoadOptions()
    if options.prefer_tflite and os.path.isfile(os.path.join(path, TFLITE_FILE)):
        return load_tflite_model(
            path,
            warmup=options.warmup,
            num_request_iterations_for_warmup=options.num_request_iterations_for_warmup,
            num_interpreters=options.tflite_interpreters,
        )
    return load_saved_model(
        path,
        tags=options.tags,
        session_config=options.session,
        warmup=options.warmup,
        num_request_iterations_for_warmup=options.num_request_iterations_for_warmup,
        runner=options.runner,
    )
