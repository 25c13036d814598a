"""Request logs as TF Serving configures them: ``PredictionLog`` records in TFRecord files, and back.

The records are the ones TF Serving's ``logging_config`` names (``predict_log``,
``classify_log``, ``regress_log``, ``multi_inference_log``, with ``log_metadata``:
the model spec of the version that answered, the sampling config, the time),
the same message as its warmup files, so a log replays as a warmup file and a
notebook capture saves to the same format.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tfserve_lab.config import RequestLogging
from tfserve_lab.core.request_log import LoggedRequest, QueueSink, Sink
from tfserve_lab.core.types import ClassifyResult, RegressResult

__all__ = [
    "ROLLOVER_BYTES",
    "TFRecordFiles",
    "existing_files",
    "file_sink",
    "logged_requests",
    "prediction_log",
    "read_prediction_logs",
]

ROLLOVER_BYTES = 64 << 20  # a log file closes and the next opens past this many bytes
_SUFFIX = ".tfrecord"


def _spec(proto: Any, record: LoggedRequest) -> None:
    proto.name = record.model
    proto.version.value = record.version
    proto.signature_name = record.signature


def _fill(proto: Any, array: Any) -> None:
    from tfserve_lab.protocol.grpc.codec import fill_tensor_proto

    # Numbers compact in tensor_content; strings typed, which tf.make_ndarray (warmup replay) reads.
    fill_tensor_proto(
        proto, array, tensor_content=getattr(array, "dtype", None) is not None and array.dtype.kind not in "OSU"
    )


def _examples(proto: Any, serialized: Sequence[bytes]) -> None:
    from tensorflow.core.example import example_pb2

    proto.example_list.examples.extend(example_pb2.Example.FromString(item) for item in serialized)


def prediction_log(record: LoggedRequest) -> Any:
    """The ``PredictionLog`` of one served request."""
    import numpy as np
    from tensorflow_serving.apis import prediction_log_pb2

    from tfserve_lab.protocol.grpc.servicers import fill_classifications

    log = prediction_log_pb2.PredictionLog()
    _spec(log.log_metadata.model_spec, record)
    log.log_metadata.sampling_config.sampling_rate = record.sampling_rate
    log.log_metadata.timestamp_secs = int(record.time_s)
    if record.method == "predict":
        request, response = log.predict_log.request, log.predict_log.response
        _spec(request.model_spec, record)
        _spec(response.model_spec, record)
        for alias, value in record.inputs.items():
            _fill(request.inputs[alias], np.asarray(value))
        request.output_filter.extend(record.output_filter)
        for alias, value in record.outputs.items():
            _fill(response.outputs[alias], np.asarray(value))
    elif record.method == "classify":
        _spec(log.classify_log.request.model_spec, record)
        _examples(log.classify_log.request.input, record.inputs["examples"])
        _spec(log.classify_log.response.model_spec, record)
        fill_classifications(log.classify_log.response.result, record.outputs.classes, record.outputs.scores)
    elif record.method == "regress":
        _spec(log.regress_log.request.model_spec, record)
        _examples(log.regress_log.request.input, record.inputs["examples"])
        _spec(log.regress_log.response.model_spec, record)
        for value in record.outputs.values.tolist():
            log.regress_log.response.result.regressions.add(value=value)
    elif record.method == "multi_inference":
        request, response = log.multi_inference_log.request, log.multi_inference_log.response
        _examples(request.input, record.inputs["examples"])
        for method, signature, result in record.outputs:
            task = request.tasks.add(method_name=f"tensorflow/serving/{method}")
            task.model_spec.name, task.model_spec.signature_name = record.model, signature
            answer = response.results.add()
            answer.model_spec.name, answer.model_spec.signature_name = record.model, signature
            answer.model_spec.version.value = record.version
            if isinstance(result, ClassifyResult):
                fill_classifications(answer.classification_result, result.classes, result.scores)
            elif isinstance(result, RegressResult):
                for value in result.values.tolist():
                    answer.regression_result.regressions.add(value=value)
    else:
        raise ValueError(f"no PredictionLog for method {record.method!r}")
    return log


class TFRecordFiles:
    """``PREFIX-00000.tfrecord``, ``PREFIX-00001.tfrecord``, ...: a new file past ``max_bytes``, numbered after any already there."""

    def __init__(self, prefix: str, max_bytes: int = ROLLOVER_BYTES) -> None:
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.paths: list[str] = []
        self._writer: Any = None
        self._size = 0
        self._lock = threading.Lock()
        directory = os.path.dirname(os.path.abspath(prefix))
        os.makedirs(directory, exist_ok=True)
        pattern = re.compile(re.escape(os.path.basename(prefix)) + r"-(\d{5})" + re.escape(_SUFFIX) + "$")
        taken = [int(m.group(1)) for name in os.listdir(directory) if (m := pattern.match(name))]
        self._next = max(taken, default=-1) + 1

    def write(self, data: bytes) -> None:
        import tensorflow as tf

        with self._lock:
            if self._writer is None or (self._size and self._size + len(data) > self.max_bytes):
                self._close_file()
                path = f"{self.prefix}-{self._next:05d}{_SUFFIX}"
                self._next += 1
                self._writer = tf.io.TFRecordWriter(path)
                self.paths.append(path)
                self._size = 0
            self._writer.write(data)
            self._size += len(data) + 16  # a TFRecord frame: length, two CRCs

    def flush(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.flush()

    def _close_file(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> None:
        with self._lock:
            self._close_file()


def file_sink(
    model: str, config: RequestLogging, *, max_bytes: int = ROLLOVER_BYTES, maxsize: int | None = None
) -> Sink:
    """The ``file`` log collector: a bounded queue, and a thread writing ``PredictionLog`` TFRecords."""
    files = TFRecordFiles(config.filename_prefix, max_bytes)
    extra = {} if maxsize is None else {"maxsize": maxsize}
    return QueueSink(
        lambda record: files.write(prediction_log(record).SerializeToString()),
        close_writer=files.close,
        name=f"tfserve-log-{model}"[:60],
        **extra,
    )


def read_prediction_logs(paths: Iterable[str | os.PathLike[str]]) -> list[Any]:
    """Every ``PredictionLog`` in the TFRecord files, in order."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for path in paths:
        for data in tf.data.TFRecordDataset(str(path)):
            logs.append(prediction_log_pb2.PredictionLog.FromString(data.numpy()))
    return logs


def logged_requests(logs: Iterable[Any]) -> list[LoggedRequest]:
    """The predict records of ``PredictionLog`` messages, with their tensors as numpy arrays (others skipped)."""
    from tfserve_lab.protocol.grpc.codec import tensor_proto_to_ndarray

    records = []
    for log in logs:
        if log.WhichOneof("log_type") != "predict_log":
            continue
        spec = log.log_metadata.model_spec
        request, response = log.predict_log.request, log.predict_log.response
        records.append(
            LoggedRequest(
                spec.name,
                spec.version.value,
                spec.signature_name,
                "predict",
                {alias: tensor_proto_to_ndarray(t, copy=True) for alias, t in request.inputs.items()},
                {alias: tensor_proto_to_ndarray(t, copy=True) for alias, t in response.outputs.items()},
                time_s=float(log.log_metadata.timestamp_secs),
                sampling_rate=log.log_metadata.sampling_config.sampling_rate,
                output_filter=tuple(request.output_filter),
            )
        )
    return records


def existing_files(prefix: str) -> list[Path]:
    """The log files a prefix has written so far, in order."""
    directory = Path(prefix).resolve().parent
    return sorted(directory.glob(Path(prefix).name + "-[0-9][0-9][0-9][0-9][0-9]" + _SUFFIX))
