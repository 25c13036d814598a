"""TensorProto <-> numpy, read as C++ ``Tensor::FromProto`` and written as ``AsProtoField`` / ``AsProtoTensorContent``."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ml_dtypes
import numpy as np

from tfserve_lab.core.dtypes import DT_NAME, DT_NUMBER, NUMPY_BY_DT, dt_for_numpy
from tfserve_lab.errors import InvalidArgument

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    # The proto module imports all of TensorFlow (its parent package), so the
    # codec only names the type; callers hand in protos they already have.
    from tensorflow.core.framework.tensor_pb2 import TensorProto
    from tensorflow.core.framework.tensor_shape_pb2 import TensorShapeProto

__all__ = ["fill_tensor_proto", "ndarray_to_tensor_proto", "tensor_proto_to_ndarray"]

# TensorShape::IsValid limits: at most 254 dimensions, element count in int64.
_MAX_RANK = 254
_MAX_ELEMENTS = 2**63 - 1
_LITTLE_ENDIAN = sys.byteorder == "little"
# scomplex_val / dcomplex_val hold float32 / float64 (real, imag) pairs.
_COMPLEX_PART: dict[str, np.dtype[Any]] = {"scomplex_val": np.dtype(np.float32), "dcomplex_val": np.dtype(np.float64)}
# bfloat16 travels over gRPC only (TF Serving's JSON has no bfloat16), so it is not in the shared table;
# TensorFlow hands it to numpy as ml_dtypes' type.
_BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


@dataclass(frozen=True, slots=True)
class _Kind:
    """How one DataType is stored: numpy dtype and the typed field TF uses for it."""

    name: str
    dtype: np.dtype[Any]
    field: str


# The typed *_val field of each DataType, as tensor.cc's ProtoHelper<T> picks it:
# every integer narrower than 64 bits travels in int_val, float16 as its bit
# pattern in half_val, complex numbers as (real, imag) pairs.
_FIELD_BY_DT: dict[str, str] = {
    "DT_FLOAT": "float_val",
    "DT_DOUBLE": "double_val",
    "DT_HALF": "half_val",
    "DT_BFLOAT16": "half_val",
    "DT_INT8": "int_val",
    "DT_INT16": "int_val",
    "DT_INT32": "int_val",
    "DT_UINT8": "int_val",
    "DT_UINT16": "int_val",
    "DT_INT64": "int64_val",
    "DT_UINT32": "uint32_val",
    "DT_UINT64": "uint64_val",
    "DT_BOOL": "bool_val",
    "DT_COMPLEX64": "scomplex_val",
    "DT_COMPLEX128": "dcomplex_val",
    "DT_STRING": "string_val",
}
_NUMPY: dict[str, np.dtype[Any]] = {**NUMPY_BY_DT, "DT_BFLOAT16": _BFLOAT16}
_KINDS: dict[int, _Kind] = {DT_NUMBER[name]: _Kind(name, _NUMPY[name], field) for name, field in _FIELD_BY_DT.items()}
_KIND_BY_NAME: dict[str, _Kind] = {kind.name: kind for kind in _KINDS.values()}

# Packed repeated fields written as their wire bytes and merged in one parse: (field number, element
# layout). Fixed-width fields are the array's own little-endian bytes; bools are one-byte varints already.
_FIXED_FIELDS: dict[str, tuple[int, np.dtype[Any]]] = {
    "float_val": (5, np.dtype("<f4")),
    "double_val": (6, np.dtype("<f8")),
    "scomplex_val": (9, np.dtype("<c8")),
    "bool_val": (11, np.dtype(np.uint8)),
    "dcomplex_val": (12, np.dtype("<c16")),
}


def tensor_proto_to_ndarray(proto: TensorProto, *, copy: bool = False) -> NDArray[Any]:
    """Decode a TensorProto into a numpy array, as TF Serving reads request tensors.

    ``tensor_content`` (little-endian raw bytes) wins when present; otherwise the
    typed ``*_val`` field of the dtype is read with TensorFlow's fill rule: no
    values give zeros (empty strings), fewer values than elements repeat the last
    one (so a single value broadcasts), extra values are ignored. DT_STRING gives
    an object array of ``bytes``, like ``tf.make_ndarray``.

    Without ``copy`` the result is read-only: a ``tensor_content`` tensor is a
    view of the bytes the protobuf runtime already copied out of the message (no
    second copy on the hot path; batching and TensorFlow copy anyway), and
    typed-field results are frozen too, so a servable sees the same flags
    whichever encoding the client chose.

    Args:
        proto: The tensor, e.g. ``request.inputs["x"]``.
        copy: Return a fresh writable array, as ``tf.make_ndarray`` does.

    Returns:
        An array with the proto's shape and the numpy dtype of its DataType.

    Raises:
        InvalidArgument: The dtype has no numpy equivalent here (DT_INVALID,
            quantized, resource, variant), the shape is invalid, or
            ``tensor_content`` does not hold exactly the shape's elements.
    """
    kind = _KINDS.get(proto.dtype)
    if kind is None:
        name = DT_NAME.get(proto.dtype, f"DataType {proto.dtype}")
        raise InvalidArgument(f"Cannot decode a tensor of type {name}: it is not supported.")
    shape = _shape_of(proto.tensor_shape)
    count = math.prod(shape)
    if count == 0:
        # FromProto ignores values and content when there are no elements.
        array = np.empty(shape, dtype=kind.dtype)
    else:
        content = proto.tensor_content
        if content:
            array = _from_content(content, kind, count).reshape(shape)
        else:
            array = _from_field(getattr(proto, kind.field), kind, count).reshape(shape)
    if copy:
        return array.copy() if not array.flags.writeable else array
    array.flags.writeable = False
    return array


def ndarray_to_tensor_proto(array: ArrayLike, dtype: str | None = None, *, tensor_content: bool = False) -> TensorProto:
    """Encode an array as a new TensorProto (see ``fill_tensor_proto``).

    Args:
        array: A numpy array or anything ``np.asarray`` takes.
        dtype: DataType name to encode as (``"DT_FLOAT"``); default: the
            array's own dtype.
        tensor_content: Pack the values into ``tensor_content`` instead of the
            typed ``*_val`` field.

    Returns:
        A TensorProto that ``tf.make_ndarray`` and TF Serving decode to ``array``.

    Raises:
        InvalidArgument: The array cannot be encoded as ``dtype``.
    """
    from tensorflow.core.framework.tensor_pb2 import TensorProto

    proto = TensorProto()
    fill_tensor_proto(proto, array, dtype, tensor_content=tensor_content)
    return proto


def fill_tensor_proto(
    proto: TensorProto, array: ArrayLike, dtype: str | None = None, *, tensor_content: bool = False
) -> TensorProto:
    """Write an array into an existing TensorProto, replacing what it held.

    Meant for ``fill_tensor_proto(response.outputs[key], array)``: the map entry
    is filled in place instead of built apart and copied in. By default every
    value goes into the typed field of its dtype, as TF Serving's responses
    carry them (``Tensor::AsProtoField``: ``float_val``, ``int_val`` for the
    narrow integers, ``half_val`` holding half and bfloat16 bit patterns,
    ``scomplex_val`` pairs, ``string_val``, ...), so clients that read
    ``outputs["y"].float_val`` work. With ``tensor_content`` the values are
    packed as ``Tensor::AsProtoTensorContent`` packs them (little-endian, C
    order; strings as varint lengths then bytes). ``str`` is encoded as UTF-8;
    numpy ``S`` arrays lose trailing NULs, as numpy stores them.

    Args:
        proto: The TensorProto to overwrite.
        array: A numpy array or anything ``np.asarray`` takes.
        dtype: DataType name to encode as (``"DT_FLOAT"``); default: the
            array's own dtype. Numbers are cast with numpy's ``same_kind``
            rule, so ints become floats but floats never silently become ints.
        tensor_content: Use ``tensor_content`` instead of the typed field.

    Returns:
        ``proto``, for chaining.

    Raises:
        InvalidArgument: The dtype is unknown or unsupported, numbers are asked
            for as strings or the reverse, or an object array holds something
            other than ``bytes`` or ``str``.
    """
    values = np.asarray(array)
    kind = _KIND_BY_NAME[_dt_name(values, dtype)]
    proto.Clear()
    proto.dtype = DT_NUMBER[kind.name]
    dims = proto.tensor_shape.dim
    for size in values.shape:
        dims.add().size = size
    if kind.field == "string_val":
        items = _string_items(values)
        if not tensor_content:
            proto.string_val.extend(items)
        elif items:
            proto.tensor_content = _encode_string_list(items)
        return proto
    if values.dtype.kind in "OSU":
        raise InvalidArgument(f"Cannot encode a {values.dtype} array of strings as {kind.name}.")
    try:
        # "<" makes the bytes little-endian, as TensorFlow reads them, on any host.
        encoded = values.astype(kind.dtype.newbyteorder("<"), casting="same_kind", copy=False)
    except TypeError as error:
        raise InvalidArgument(f"Cannot encode a {values.dtype} array as {kind.name}: {error}.") from None
    if tensor_content:
        # tobytes() writes C order whatever the layout.
        proto.tensor_content = encoded.tobytes()
    elif encoded.size:
        _fill_typed(proto, kind.field, encoded.reshape(-1))
    return proto


def _fill_typed(proto: TensorProto, field: str, flat: NDArray[Any]) -> None:
    """Every value into the typed field, as ``ProtoHelper<T>::Fill`` writes them (none dropped)."""
    fixed = _FIXED_FIELDS.get(field)
    if fixed is not None:
        number, wire = fixed
        _merge_packed(proto, number, flat.astype(wire, copy=False).tobytes())
        return
    # Varint fields: protobuf's extend from Python ints beats building varints with numpy.
    getattr(proto, field).extend((flat.view("<u2") if field == "half_val" else flat).tolist())


def _merge_packed(proto: TensorProto, number: int, payload: bytes) -> None:
    """Append a packed repeated field from its wire bytes: one C parse instead of a Python value per item."""
    proto.MergeFromString(_varint((number << 3) | 2) + _varint(len(payload)) + payload)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _encode_string_list(items: list[bytes]) -> bytes:
    """``port::EncodeStringList``: every length as a varint, then the strings back to back."""
    return b"".join(_varint(len(item)) for item in items) + b"".join(items)


def _dt_name(values: NDArray[Any], dtype: str | None) -> str:
    if dtype is None:
        # The DataType table knows native byte order only; ">i4" is still int32.
        native = values.dtype if values.dtype.isnative else values.dtype.newbyteorder("=")
        if native == _BFLOAT16:
            return "DT_BFLOAT16"
        try:
            return dt_for_numpy(native)
        except KeyError:
            raise InvalidArgument(f"Cannot encode a {values.dtype} array: it has no TensorFlow DataType.") from None
    if dtype not in _KIND_BY_NAME:
        raise InvalidArgument(f"Cannot encode a tensor as {dtype}: it is not a supported DataType.")
    if dtype == "DT_STRING" and values.dtype.kind not in "OSU":
        raise InvalidArgument(f"Cannot encode a {values.dtype} array as DT_STRING.")
    return dtype


def _string_items(values: NDArray[Any]) -> list[bytes]:
    items = values.ravel().tolist()
    if values.dtype.kind == "S" or all(type(item) is bytes for item in items):
        return items  # type: ignore[no-any-return]
    return [_string_item(item) for item in items]


def _string_item(item: object) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        try:
            return item.encode("utf-8")
        except UnicodeEncodeError:
            # Lone surrogates have no UTF-8 form.
            raise InvalidArgument(f"Cannot encode {item!r} as DT_STRING: it is not valid Unicode.") from None
    raise InvalidArgument(f"Cannot encode {type(item).__name__} {item!r} as DT_STRING: expected bytes or str.")


def _shape_of(shape: TensorShapeProto) -> tuple[int, ...]:
    # unknown_rank is ignored, as TensorShape::IsValid ignores it for full
    # shapes (a backward-compatibility quirk TF keeps): only dims count.
    sizes = tuple(dim.size for dim in shape.dim)
    if len(sizes) > _MAX_RANK:
        raise InvalidArgument(f"Cannot decode a tensor of rank {len(sizes)}: the limit is {_MAX_RANK}.")
    count = 1
    for size in sizes:
        if size < 0:
            raise InvalidArgument(f"Cannot decode a tensor of shape {list(sizes)}: dimension sizes must be known.")
        count *= size
        # Checked as it grows, like TensorShape's MultiplyWithoutOverflow.
        if count > _MAX_ELEMENTS:
            raise InvalidArgument(f"Cannot decode a tensor of shape {list(sizes)}: too many elements.")
    return sizes


def _from_content(content: bytes, kind: _Kind, count: int) -> NDArray[Any]:
    if kind.field == "string_val":
        return _decode_string_list(content, count)
    expected = count * kind.dtype.itemsize
    if len(content) != expected:
        raise InvalidArgument(
            f"Cannot decode {kind.name} tensor_content of {len(content)} bytes: {count} elements need {expected}."
        )
    # TF refuses bool bytes other than 0 and 1 rather than reading garbage.
    if kind.name == "DT_BOOL" and np.frombuffer(content, dtype=np.uint8).max() > 1:
        raise InvalidArgument("Cannot decode DT_BOOL tensor_content: bytes must be 0 or 1.")
    array = np.frombuffer(content, dtype=kind.dtype.newbyteorder("<"))
    return array if _LITTLE_ENDIAN else array.astype(kind.dtype)


def _decode_string_list(content: bytes, count: int) -> NDArray[Any]:
    """Strings in tensor_content: ``count`` varint32 lengths, then the bytes back to back."""
    lengths = []
    pos = 0
    size = len(content)
    for _ in range(count):
        length = shift = 0
        while True:
            if pos >= size or shift > 28:
                raise InvalidArgument("Cannot decode DT_STRING tensor_content: bad length prefix.")
            byte = content[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        lengths.append(length)
    if pos + sum(lengths) != size:
        raise InvalidArgument(
            f"Cannot decode DT_STRING tensor_content: {size - pos} bytes of data "
            f"do not match the lengths of {count} strings."
        )
    out = np.empty(count, dtype=object)
    for index, length in enumerate(lengths):
        out[index] = content[pos : pos + length]
        pos += length
    return out


def _from_field(field: Any, kind: _Kind, count: int) -> NDArray[Any]:
    if kind.field == "string_val":
        return _fill_objects(list(field), count)
    # The upb runtime's repeated fields convert with __array__ (one memcpy);
    # astype then narrows int_val with C casts (300 -> 44 for int8), as TF's
    # static_cast does.
    raw = np.asarray(field)
    if kind.field == "half_val":
        values = raw.astype(np.uint16).view(kind.dtype)
    elif kind.field in _COMPLEX_PART:
        parts = raw.astype(_COMPLEX_PART[kind.field], copy=False)
        # A trailing unpaired number is not an element; TF drops it too.
        values = parts[: parts.size // 2 * 2].view(kind.dtype)
    else:
        values = raw.astype(kind.dtype, copy=False)
    return _fill_numbers(values, count)


def _fill_numbers(values: NDArray[Any], count: int) -> NDArray[Any]:
    """TF's FromProtoField: zeros when empty, extra values dropped, last value repeated."""
    given = values.size
    if given == count:
        return values
    if given > count:
        return values[:count]
    if given == 0:
        return np.zeros(count, dtype=values.dtype)
    out = np.empty(count, dtype=values.dtype)
    out[:given] = values
    out[given:] = values[-1]
    return out


def _fill_objects(items: list[bytes], count: int) -> NDArray[Any]:
    out = np.empty(count, dtype=object)
    given = min(len(items), count)
    out[:given] = items[:given]
    out[given:] = items[given - 1] if given else b""
    return out
