"""A capture: live requests of a served model and the answers they got, brought into the notebook.

Records come from the engine's request log (the same ``PredictionLog`` records a
``logging_config`` writes to files), so ``save`` writes TF Serving's format, a
file the server wrote loads with ``Capture.load``, and either one is a valid
warmup file (``assets.extra/tf_serving_warmup_requests``).
"""

from __future__ import annotations

import glob
import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfserve_lab.core.request_log import LoggedRequest, stack
from tfserve_lab.request_logging import logged_requests, prediction_log, read_prediction_logs

__all__ = ["MAX_WARMUP_RECORDS", "Capture"]

MAX_WARMUP_RECORDS = 1000  # TF Serving's WarmupConsts::kMaxNumRecords


@dataclass(frozen=True)
class Capture:
    """Captured requests of one model, oldest first."""

    model: str
    records: Sequence[LoggedRequest] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def predict_records(self) -> list[LoggedRequest]:
        """The predict requests (classify, regress and MultiInference ones carry tf.Examples)."""
        return [r for r in self.records if r.method == "predict"]

    @property
    def inputs(self) -> dict[str, np.ndarray]:
        """Every predict request's inputs by name, the requests' rows one after another."""
        return stack(self.predict_records, "inputs")

    @property
    def outputs(self) -> dict[str, np.ndarray]:
        """What the live server answered to them, by output name, in the same row order."""
        return stack(self.predict_records, "outputs")

    @property
    def versions(self) -> np.ndarray:
        """The version that answered each request."""
        return np.array([r.version for r in self.records], dtype=np.int64)

    @property
    def timestamps(self) -> np.ndarray:
        """When each request was answered (seconds since the epoch)."""
        return np.array([r.time_s for r in self.records], dtype=np.float64)

    @property
    def requests_per_second(self) -> float:
        """The rate the requests came at (0 with fewer than two)."""
        if len(self.records) < 2:
            return 0.0
        span = float(self.timestamps.max() - self.timestamps.min())
        return (len(self.records) - 1) / span if span > 0 else 0.0

    def to_frame(self) -> Any:
        """One row per request: time, version, signature, method, rows (pandas must be installed)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Capture.to_frame needs pandas: pip install pandas") from None
        rows = []
        for r in self.records:
            first = next(iter(r.inputs.values()), ())
            rows.append(
                {
                    "time": pd.Timestamp(r.time_s, unit="s"),
                    "version": r.version,
                    "signature": r.signature,
                    "method": r.method,
                    "rows": len(first) if hasattr(first, "__len__") else 1,
                    **{f"input:{k}": v for k, v in r.inputs.items()},
                    **({f"output:{k}": v for k, v in r.outputs.items()} if isinstance(r.outputs, dict) else {}),
                }
            )
        return pd.DataFrame(rows)

    def serialized(self) -> list[bytes]:
        """Every record as a serialized ``PredictionLog``."""
        return [prediction_log(r).SerializeToString() for r in self.records]

    def warmup_records(self) -> list[bytes]:
        """The predict records as TF Serving warmup records (at most its 1000)."""
        return [prediction_log(r).SerializeToString() for r in self.predict_records[:MAX_WARMUP_RECORDS]]

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the records as one TFRecord file of ``PredictionLog``s (the request log's format)."""
        import tensorflow as tf

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tf.io.TFRecordWriter(str(target)) as writer:
            for data in self.serialized():
                writer.write(data)
        return target

    @classmethod
    def load(cls, *paths: str | os.PathLike[str], model: str | None = None) -> Capture:
        """Read ``PredictionLog`` TFRecord files (a saved capture, a server's request log, a warmup file).

        A path may be a glob (``logs/my_model-*.tfrecord``); only predict records are kept.
        """
        files: list[str] = []
        for path in paths:
            text = str(path)
            files += sorted(glob.glob(text)) if any(c in text for c in "*?[") else [text]
        records = logged_requests(read_prediction_logs(files))
        name = model or (records[0].model if records else "")
        return cls(name, tuple(r for r in records if model is None or r.model == model))

    def __repr__(self) -> str:
        versions = sorted(set(self.versions.tolist()))
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in self.inputs.items())
        return (
            f"Capture of {self.model}: {len(self.records)} requests from version(s) {versions}, "
            f"{self.requests_per_second:.1f} requests/s; inputs {shapes or 'none'}"
        )

    def _repr_html_(self) -> str:
        return f"<b>{html.escape(repr(self))}</b>"
