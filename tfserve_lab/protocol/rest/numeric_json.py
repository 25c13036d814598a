"""Float tensors read straight from a predict body's text, without a Python float per value.

A wide request (32 rows of 784 floats) costs 25k Python floats through
orjson and ``np.asarray``; simdjson's ``as_buffer`` hands the same numbers
over as one C buffer of doubles, about 3x faster. This reader only takes the
unambiguous case: a valid JSON object whose tensors are dense, rectangular
arrays of plain numbers for float signatures. For anything else it answers
None and the caller takes ``codec``'s slower tiers, whose rule-by-rule path
owns every TF Serving error message; so this module never raises for bad input.

``as_buffer`` flattens nested arrays without checking that they are
rectangular, hence the checks here: every array above the last level has the
expected length, the leaf count is the product of the shape, and the body
holds no ``[`` beyond the tensors' own (an array where a number belongs).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import simdjson

from tfserve_lab.core.dtypes import NUMPY_BY_DT
from tfserve_lab.core.types import TensorInfo
from tfserve_lab.protocol.rest.jsonwrite import JSON_FLOATS

__all__ = ["NumericBody", "parse_numeric_body"]

_ROOT_START = frozenset(b"{ \t\r\n")  # not a BOM: rapidjson and simdjson differ there
# Below this many bytes, orjson's path is as fast (measured: 6 us for one row of 10 floats either way).
_MIN_BODY = 512
_KEYS = (frozenset({"instances"}), frozenset({"inputs"}))
# Checking an array costs a Python call: past 16 checks and one per 8 leaves, orjson's path is as fast.
_FREE_CHECKS = 16
_LEAVES_PER_CHECK = 8
# numpy's most dimensions: deeper lists are the exact path's to refuse.
_MAX_RANK = 64
_local = threading.local()


@dataclass(frozen=True, slots=True)
class NumericBody:
    """A predict body made only of float64 tensors: unnamed (one tensor) or by input name."""

    signature_name: str
    row_format: bool
    unnamed: np.ndarray | None
    named: dict[str, np.ndarray]

    def inputs_for(self, infos: Mapping[str, TensorInfo]) -> dict[str, np.ndarray] | None:
        """The signature's inputs at their dtypes, or None when the exact path must decide."""
        if not infos or any(info.dtype not in JSON_FLOATS for info in infos.values()):
            return None
        if self.unnamed is not None:
            if len(infos) != 1:
                return None
            tensors = {next(iter(infos)): self.unnamed}
        elif self.named.keys() == infos.keys():
            tensors = self.named
        else:
            return None
        # Via float64, like rapidjson's GetDouble() before the narrowing to float.
        with np.errstate(over="ignore"):
            return {name: array.astype(NUMPY_BY_DT[infos[name].dtype], copy=False) for name, array in tensors.items()}


def parse_numeric_body(body: bytes) -> NumericBody | None:
    """The body's float tensors, or None when it is anything but plain dense numbers (or not JSON)."""
    if len(body) < _MIN_BODY or body[0] not in _ROOT_START:
        return None
    body = body if type(body) is bytes else bytes(body)
    try:
        doc = _parse(body)
    except (ValueError, RuntimeError):  # invalid JSON, or a number simdjson cannot hold
        return None
    return _read(doc, body)


def _parse(body: bytes) -> object:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
    try:
        return parser.parse(body)
    except RuntimeError:
        # A parser still referenced by live proxies refuses to parse again; take a fresh one.
        _local.parser = simdjson.Parser()
        return _local.parser.parse(body)


def _read(doc: object, body: bytes) -> NumericBody | None:
    if type(doc) is not simdjson.Object:
        return None
    keys = list(doc.keys())
    if len(set(keys)) != len(keys):  # duplicate keys: rapidjson takes the first, orjson the last
        return None
    names = set(keys)
    name = ""
    if "signature_name" in names:
        given = doc["signature_name"]
        if type(given) is not str:
            return None
        name = given
        names.discard("signature_name")
    if names not in _KEYS:
        return None
    row_format = "instances" in names
    value = doc["instances" if row_format else "inputs"]
    brackets = name.count("[")
    if type(value) is simdjson.Array:
        dense = _dense(value)
        if dense is None:
            return None
        unnamed, arrays = dense
        numeric = NumericBody(name, row_format, unnamed, {})
    elif type(value) is simdjson.Object and not row_format:
        tensor_names = list(value.keys())
        if len(set(tensor_names)) != len(tensor_names) or not tensor_names:
            return None
        named, arrays = {}, 0
        for tensor_name in tensor_names:
            item = value[tensor_name]
            dense = _dense(item) if type(item) is simdjson.Array else None
            if dense is None:
                return None
            named[tensor_name], count = dense
            arrays += count
            brackets += tensor_name.count("[")
        numeric = NumericBody(name, row_format, None, named)
    else:
        return None
    return numeric if body.count(b"[") == arrays + brackets else None


def _dense(array: simdjson.Array) -> tuple[np.ndarray, int] | None:
    """The array's float64 values in its shape, and how many JSON arrays it is made of."""
    shape: list[int] = []
    node: object = array
    while type(node) is simdjson.Array:
        if not len(node) or len(shape) == _MAX_RANK:
            return None  # empty dimensions and deep nesting have their own rules; leave them to the exact path
        shape.append(len(node))
        node = node[0]
    size = math.prod(shape)
    arrays = sum(math.prod(shape[:depth]) for depth in range(len(shape)))
    checks = arrays - 1
    if checks > _FREE_CHECKS and checks * _LEAVES_PER_CHECK > size:
        return None
    level = [array]
    for depth in range(1, len(shape)):
        width, below = shape[depth], []
        for parent in level:
            for child in parent:
                if type(child) is not simdjson.Array or len(child) != width:
                    return None
                below.append(child)
        level = below
    try:
        values = np.frombuffer(array.as_buffer(of_type="d"), dtype=np.float64)
    except (TypeError, ValueError):  # a string, bool, null or object among the numbers
        return None
    if values.size != size:
        return None
    return values.reshape(shape), arrays
