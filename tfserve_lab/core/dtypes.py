"""TensorFlow DataType names and numbers and their numpy dtypes, without TensorFlow."""

from __future__ import annotations

import numpy as np

__all__ = ["DT_NAME", "DT_NUMBER", "NUMPY_BY_DT", "dt_for_numpy", "numpy_for_dt"]

# DataType enum of tensorflow/core/framework/types.proto.
DT_NUMBER: dict[str, int] = {
    "DT_INVALID": 0,
    "DT_FLOAT": 1,
    "DT_DOUBLE": 2,
    "DT_INT32": 3,
    "DT_UINT8": 4,
    "DT_INT16": 5,
    "DT_INT8": 6,
    "DT_STRING": 7,
    "DT_COMPLEX64": 8,
    "DT_INT64": 9,
    "DT_BOOL": 10,
    "DT_QINT8": 11,
    "DT_QUINT8": 12,
    "DT_QINT32": 13,
    "DT_BFLOAT16": 14,
    "DT_QINT16": 15,
    "DT_QUINT16": 16,
    "DT_UINT16": 17,
    "DT_COMPLEX128": 18,
    "DT_HALF": 19,
    "DT_RESOURCE": 20,
    "DT_VARIANT": 21,
    "DT_UINT32": 22,
    "DT_UINT64": 23,
}
DT_NAME: dict[int, str] = {number: name for name, number in DT_NUMBER.items()}

# Strings are numpy object arrays of bytes, as tf.make_ndarray returns them.
NUMPY_BY_DT: dict[str, np.dtype] = {
    "DT_FLOAT": np.dtype(np.float32),
    "DT_DOUBLE": np.dtype(np.float64),
    "DT_HALF": np.dtype(np.float16),
    "DT_INT8": np.dtype(np.int8),
    "DT_INT16": np.dtype(np.int16),
    "DT_INT32": np.dtype(np.int32),
    "DT_INT64": np.dtype(np.int64),
    "DT_UINT8": np.dtype(np.uint8),
    "DT_UINT16": np.dtype(np.uint16),
    "DT_UINT32": np.dtype(np.uint32),
    "DT_UINT64": np.dtype(np.uint64),
    "DT_BOOL": np.dtype(np.bool_),
    "DT_COMPLEX64": np.dtype(np.complex64),
    "DT_COMPLEX128": np.dtype(np.complex128),
    "DT_STRING": np.dtype(object),
}
_DT_BY_NUMPY: dict[np.dtype, str] = {dt: name for name, dt in NUMPY_BY_DT.items()}


def numpy_for_dt(dtype: str) -> np.dtype:
    """The numpy dtype for a DataType name; KeyError when numpy has none."""
    return NUMPY_BY_DT[dtype]


def dt_for_numpy(dtype: np.dtype) -> str:
    """The DataType name for a numpy dtype; bytes and str arrays are DT_STRING."""
    if dtype.kind in ("S", "U", "O"):
        return "DT_STRING"
    return _DT_BY_NUMPY[np.dtype(dtype)]
