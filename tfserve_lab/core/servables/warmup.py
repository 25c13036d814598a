"""Warmup: replay ``assets.extra/tf_serving_warmup_requests`` before a version serves."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np

from tfserve_lab.core.progress import report
from tfserve_lab.core.servables.base import Servable
from tfserve_lab.core.servables.tf_errors import tf_error
from tfserve_lab.errors import ErrorCode, InvalidArgument, TfServeError

__all__ = ["MAX_WARMUP_RECORDS", "WARMUP_FILE", "run_warmup"]

log = logging.getLogger(__name__)

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
MAX_WARMUP_RECORDS = 1000  # WarmupConsts::kMaxNumRecords


def run_warmup(servable: Servable, path: str, num_request_iterations: int = 0) -> tuple[int, float]:
    """Replay ``assets.extra/tf_serving_warmup_requests`` as TF Serving's saved_model_warmup does.

    Args:
        servable: The freshly loaded servable.
        path: Its version folder.
        num_request_iterations: Runs per record (``--num_request_iterations_for_warmup``); 0 means 1.

    Returns:
        The number of records replayed and the seconds it took; (0, 0.0) without a file.

    Raises:
        TfServeError: DATA_LOSS for a file that is not TFRecord, INVALID_ARGUMENT for a
            record that is no PredictionLog or past 1000 records, or the failed request's error.
    """
    file = os.path.join(path, WARMUP_FILE)
    if not os.path.isfile(file):
        return 0, 0.0
    import tensorflow as tf
    from google.protobuf import message
    from tensorflow_serving.apis import prediction_log_pb2

    iterations = num_request_iterations if num_request_iterations > 0 else 1
    started = time.monotonic()
    count = 0
    try:
        total = min(sum(1 for _ in tf.data.TFRecordDataset(file)), MAX_WARMUP_RECORDS + 1)
        log.info("Starting to read warmup data for model at %s with %d record(s).", file, total)
        report("warmup", 0, total)
        for record in tf.data.TFRecordDataset(file):
            data = record.numpy()
            entry = prediction_log_pb2.PredictionLog()
            try:
                entry.ParseFromString(data)
            except message.DecodeError as exc:
                raise InvalidArgument(f"Failed to parse warmup record: {data!r} from {file}") from exc
            for _ in range(iterations):
                _replay(servable, entry, tf)
            count += 1
            report("warmup", min(count, total), total)
            if count > MAX_WARMUP_RECORDS:
                raise InvalidArgument(f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {file}")
    except tf.errors.DataLossError as exc:
        raise TfServeError(
            f"{tf_error(exc).message}. Please verify your warmup data is in TFRecord format.", code=ErrorCode.DATA_LOSS
        ) from exc
    except tf.errors.OpError as exc:
        raise tf_error(exc) from exc
    elapsed = time.monotonic() - started
    log.info("Finished reading warmup data for model at %s. Number of warmup records read: %d.", file, count)
    return count, elapsed


def _replay(servable: Servable, entry: Any, tf: Any) -> None:
    kind = entry.WhichOneof("log_type")
    if kind == "predict_log":
        request = entry.predict_log.request
        inputs = {alias: tf.make_ndarray(proto) for alias, proto in request.inputs.items()}
        servable.run(request.model_spec.signature_name, inputs, list(request.output_filter) or None)
    elif kind in ("classify_log", "regress_log"):
        request = getattr(entry, kind).request
        servable.run(request.model_spec.signature_name, {"inputs": _serialized_examples(request.input)})
    elif kind == "multi_inference_log":
        request = entry.multi_inference_log.request
        for task in request.tasks:
            servable.run(task.model_spec.signature_name, {"inputs": _serialized_examples(request.input)})
    elif kind == "session_run_log":
        number = entry.DESCRIPTOR.fields_by_name[kind].number
        raise TfServeError(f"Unsupported log_type for warmup: {number}", code=ErrorCode.UNIMPLEMENTED)


def _serialized_examples(request_input: Any) -> np.ndarray:
    """An Input proto as the string tensor TF Serving feeds: context bytes prefix each example."""
    kind = request_input.WhichOneof("kind")
    if kind == "example_list_with_context":
        listed = request_input.example_list_with_context
        context = listed.context.SerializeToString()
        serialized = [context + example.SerializeToString() for example in listed.examples]
    elif kind == "example_list":
        serialized = [example.SerializeToString() for example in request_input.example_list.examples]
    else:
        serialized = []
    if not serialized:
        raise InvalidArgument("Input is empty.")
    return np.array(serialized, dtype=object)
