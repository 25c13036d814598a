"""Predict tensors made by one ``np.asarray`` call from parsed JSON lists, or None for the rule-by-rule path.

Rectangular lists of plain numbers (or booleans, for DT_BOOL) are most of
the traffic; numpy reads them in one call, about 20x faster than filling a
tensor value by value. This path only takes what it can read exactly as
``AddValueToTensor`` would; for anything else (strings, b64, ragged lists,
a boolean among numbers, an integer out of range) it answers None and
``codec``'s rule-by-rule path decides, which owns every error message: so
this module never raises for bad input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from tfserve_lab.core.dtypes import NUMPY_BY_DT
from tfserve_lab.core.types import TensorInfo
from tfserve_lab.protocol.rest.jsonwrite import JSON_FLOATS

__all__ = ["INT_RANGES", "vectorized_instances", "vectorized_tensor"]

# The rapidjson predicate AddValueToTensor applies per DataType (IsInt, IsInt64, IsUint, IsUint64), as ranges.
INT_RANGES = {
    **dict.fromkeys(("DT_INT32", "DT_INT16", "DT_INT8", "DT_UINT8"), (-(2**31), 2**31 - 1)),
    "DT_INT64": (-(2**63), 2**63 - 1),
    "DT_UINT32": (0, 2**32 - 1),
    "DT_UINT64": (0, 2**64 - 1),
}
_TYPES = frozenset({*JSON_FLOATS, *INT_RANGES, "DT_BOOL"})


def _bool_suspect(array: np.ndarray, may_have_bools: Callable[[], bool]) -> bool:
    """Whether a 0 or 1 in ``array`` may have been a JSON boolean; the cheaper test runs first."""
    if array.size <= 64:  # a short text scan beats numpy's per-call cost
        return may_have_bools() and bool(np.any((array == 0) | (array == 1)))
    return bool(np.any((array == 0) | (array == 1))) and may_have_bools()


def vectorized_tensor(value: Any, dtype: str, may_have_bools: Callable[[], bool]) -> np.ndarray | None:
    """The tensor for a rectangular list of plain numbers (or booleans), or None for the rule-by-rule path.

    Args:
        value: One input's parsed JSON value.
        dtype: The input's DataType name.
        may_have_bools: Whether the body's text may hold a ``true`` or ``false`` (numpy reads them as 1 and 0).
    """
    if dtype not in _TYPES:
        return None
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError):  # ragged, or values numpy cannot hold
        return None
    kind = array.dtype.kind
    if dtype == "DT_BOOL":
        return array if kind == "b" else None
    if kind not in "iuf" or (kind == "f" and dtype not in JSON_FLOATS):
        return None
    if array.size and _bool_suspect(array, may_have_bools):
        return None
    if dtype in JSON_FLOATS:
        # Via float64, like rapidjson's GetDouble() before the narrowing to float.
        with np.errstate(over="ignore"):
            return array.astype(np.float64, copy=False).astype(NUMPY_BY_DT[dtype], copy=False)
    low, high = INT_RANGES[dtype]
    if array.size and (int(array.min()) < low or int(array.max()) > high):
        return None
    return array.astype(NUMPY_BY_DT[dtype], copy=False)


def vectorized_instances(
    rows: list[Any], infos: Mapping[str, TensorInfo], may_have_bools: Callable[[], bool]
) -> dict[str, np.ndarray] | None:
    """The tensors of a non-empty ``instances`` list, batched by input, or None for the rule-by-rule path."""
    if "b64" in infos:  # a row {"b64": ...} is a value, not a named input: the rules tell them apart
        return None
    if type(rows[0]) is dict:
        if not all(type(row) is dict and row.keys() == infos.keys() for row in rows):
            return None
        columns: dict[str, Any] = {name: [row[name] for row in rows] for name in infos}
    elif len(infos) == 1:
        columns = {next(iter(infos)): rows}
    else:
        return None
    out = {}
    for name, column in columns.items():
        array = vectorized_tensor(column, infos[name].dtype, may_have_bools)
        if array is None:
            return None
        out[name] = array
    return out
