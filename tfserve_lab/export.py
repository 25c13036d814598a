"""Keras/TF objects -> versioned SavedModels (with warmup records), and what a SavedModel holds.

``export_model`` writes the next numeric version folder the way TF Serving
wants it: into a temporary folder first, renamed into place when complete,
so a polling server never sees half a version.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tfserve_lab.core.repository import list_versions
from tfserve_lab.core.servables.tf_setup import quiet_tensorflow_logs
from tfserve_lab.core.types import SignatureInfo
from tfserve_lab.errors import ErrorCode, InvalidArgument, TfServeError

__all__ = ["ExportResult", "SavedModelInfo", "export_model", "inspect_saved_model", "next_version"]

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


@dataclass(frozen=True)
class ExportResult:
    """Where a model version was written."""

    name: str
    base_path: str
    version: int
    path: str
    signatures: Mapping[str, SignatureInfo]
    warmup_records: int = 0


@dataclass(frozen=True)
class SavedModelInfo:
    """What ``saved_model_cli show --all`` shows: tag sets and their signatures."""

    path: str
    meta_graphs: Mapping[tuple[str, ...], Mapping[str, SignatureInfo]]


def next_version(base_path: str) -> int:
    """One more than the highest numeric version folder (1 for a new repository)."""
    versions = list_versions(base_path)
    return max(versions, default=0) + 1


def export_model(
    model: Any,
    name: str,
    *,
    base_path: str = "models",
    version: int | None = None,
    warmup: Any = None,
    progress: Callable[[str, float | None], None] | None = None,
) -> ExportResult:
    """Write ``model`` as version ``version`` (default: the next one) into ``base_path``.

    Args:
        model: A Keras 3 model (exported with ``model.export``), or a ``tf.Module`` /
            ``tf.function`` holder saved with ``tf.saved_model.save``.
        name: The model's name (for messages and the result).
        base_path: TF Serving's base_path: the folder that holds the model's numeric version folders.
        version: The version number; the next free one when None.
        warmup: Optional sample input (array, or dict of arrays by input name), or a ``Capture`` of live
            requests, written as TF Serving warmup records, replayed when the version loads.
        progress: Called with a line of text and the fraction done as the export advances.

    Raises:
        TfServeError: ALREADY_EXISTS when the version folder exists, INVALID_ARGUMENT for an
            object that cannot be exported.
    """
    import tensorflow as tf

    def step(text: str, fraction: float) -> None:
        if progress is not None:
            progress(text, fraction)

    repository = os.path.abspath(base_path)
    os.makedirs(repository, exist_ok=True)
    version = next_version(repository) if version is None else int(version)
    if version < 0:
        raise InvalidArgument(f"Version must be a non-negative number, got {version}.")
    target = os.path.join(repository, str(version))
    if os.path.exists(target):
        raise TfServeError(f"Version {version} of {name} already exists at {target}.", code=ErrorCode.ALREADY_EXISTS)
    staging = tempfile.mkdtemp(prefix=f".{version}-", dir=repository)
    try:
        path = os.path.join(staging, "model")
        step(f"{name} version {version}: tracing and writing the SavedModel", 0.1)
        with quiet_tensorflow_logs():
            _save(model, path, tf)
        info = inspect_saved_model(path)
        signatures = info.meta_graphs.get(("serve",)) or next(iter(info.meta_graphs.values()))
        records = 0
        if warmup is not None:
            step(f"{name} version {version}: writing warmup records", 0.8)
            records = _write_warmup(path, signatures, warmup, tf)
        # Version folders appear whole: the server ignores the dot-prefixed staging folder.
        os.rename(path, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    step(f"{name} version {version}: written to {target}", 1.0)
    return ExportResult(name, repository, version, target, signatures, records)


def _save(model: Any, path: str, tf: Any) -> None:
    keras = getattr(tf, "keras", None)
    if keras is not None and isinstance(model, keras.Model):
        # Keras 3: `export` writes a serving SavedModel; `save` writes a .keras file.
        model.export(path, format="tf_saved_model", verbose=False)
        return
    if isinstance(model, tf.Module) or hasattr(model, "signatures"):
        tf.saved_model.save(model, path)
        return
    if callable(getattr(model, "get_concrete_function", None)):
        holder = tf.Module()
        holder.serve = model
        tf.saved_model.save(holder, path, signatures={"serving_default": model.get_concrete_function()})
        return
    raise InvalidArgument(
        f"Cannot export a {type(model).__name__}: pass a Keras model, a tf.Module or a tf.function with a signature."
    )


def _write_warmup(path: str, signatures: Mapping[str, SignatureInfo], sample: Any, tf: Any) -> int:
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    captured = getattr(sample, "warmup_records", None)
    if callable(captured):
        # A capture of live traffic: its requests, as TF Serving's warmup records, exactly as they came.
        records = captured()
        if not records:
            raise InvalidArgument("The capture holds no predict requests to warm up with.")
        os.makedirs(os.path.join(path, "assets.extra"), exist_ok=True)
        with tf.io.TFRecordWriter(os.path.join(path, WARMUP_FILE)) as writer:
            for data in records:
                writer.write(data)
        return len(records)

    signature = signatures.get("serving_default")
    if signature is None:
        raise InvalidArgument("Warmup needs a serving_default signature.")
    if isinstance(sample, Mapping):
        inputs = dict(sample)
    elif len(signature.inputs) == 1:
        inputs = {next(iter(signature.inputs)): sample}
    else:
        raise InvalidArgument(f"The signature has inputs {sorted(signature.inputs)}: pass the warmup sample as a dict.")
    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = "serving_default"
    for alias, value in inputs.items():
        info = signature.inputs.get(alias)
        if info is None:
            raise InvalidArgument(f"Warmup input {alias!r} is not an input of serving_default.")
        from tfserve_lab.core.dtypes import numpy_for_dt

        dtype = numpy_for_dt(info.dtype) if info.dtype != "DT_STRING" else None
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(np.asarray(value, dtype=dtype)))
    entry = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    os.makedirs(os.path.join(path, "assets.extra"), exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(path, WARMUP_FILE)) as writer:
        writer.write(entry.SerializeToString())
    return 1


def inspect_saved_model(path: str) -> SavedModelInfo:
    """Tag sets and signatures of the SavedModel in ``path`` (a version folder).

    Raises:
        TfServeError: NOT_FOUND when there is no SavedModel there.
    """
    from tfserve_lab.core.servables.saved_model_reader import read_saved_model, signatures_of

    proto = read_saved_model(path)
    graphs = {tuple(sorted(mg.meta_info_def.tags)): signatures_of(mg) for mg in proto.meta_graphs}
    return SavedModelInfo(os.path.abspath(path), graphs)
