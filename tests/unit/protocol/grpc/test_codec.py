"""TensorProto codec: round trips, TensorFlow cross-checks, TF's fill rule, errors."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import predict_pb2

from tfserve_lab.core.dtypes import DT_NUMBER
from tfserve_lab.errors import ErrorCode, InvalidArgument
from tfserve_lab.protocol.grpc.codec import fill_tensor_proto, ndarray_to_tensor_proto, tensor_proto_to_ndarray

NUMERIC_DTYPES = [
    np.float16,
    np.float32,
    np.float64,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.bool_,
    np.complex64,
    np.complex128,
]
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


def proto(dtype: str, shape: list[int], **fields: object) -> tensor_pb2.TensorProto:
    """A hand-made TensorProto, the way a non-Python client may write one."""
    message = tensor_pb2.TensorProto(dtype=DT_NUMBER[dtype], **fields)
    for size in shape:
        message.tensor_shape.dim.add(size=size)
    return message


def tf_parse(message: tensor_pb2.TensorProto) -> np.ndarray:
    """What TF Serving sees: C++ Tensor::FromProto, reached through tf.io.parse_tensor."""
    value = tf.io.parse_tensor(message.SerializeToString(), tf.as_dtype(message.dtype)).numpy()
    # .numpy() of a scalar tensor is a numpy scalar, or bare bytes for a string.
    return np.array(value, dtype=object) if isinstance(value, bytes) else np.asarray(value)


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    """Same dtype, shape and values; numbers compared bit for bit (NaN payloads, -0.0)."""
    expected = np.asarray(expected)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if expected.dtype == object:
        assert actual.tolist() == expected.tolist()
    else:
        assert np.ascontiguousarray(actual).tobytes() == np.ascontiguousarray(expected).tobytes()


def roundtrip_checks(array: np.ndarray, expected: np.ndarray) -> None:
    """Both encodings decode to ``expected`` by us and by TF's C++ reader; typed fields by tf.make_ndarray too."""
    for tensor_content in (False, True):
        message = ndarray_to_tensor_proto(array, tensor_content=tensor_content)
        wire = tensor_pb2.TensorProto.FromString(message.SerializeToString())
        assert_same(tensor_proto_to_ndarray(wire), expected)
        assert_same(tf_parse(wire), expected)
        # tf.make_ndarray cannot read strings from tensor_content (np.frombuffer of objects).
        if not (tensor_content and expected.dtype == object and expected.size):
            assert_same(tf.make_ndarray(wire), expected)


def as_object_bytes(values: list[bytes], shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out.reshape(shape)


# Round trips and TensorFlow cross-checks.

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(data=st.data(), dtype=st.sampled_from(NUMERIC_DTYPES), shape=SHAPES)
def test_numeric_round_trip_matches_tensorflow(data: st.DataObject, dtype: type, shape: tuple[int, ...]) -> None:
    array = data.draw(hnp.arrays(dtype, shape))
    roundtrip_checks(array, array)
    # And the other way: TensorFlow's encoding (typed fields for bool, complex,
    # uint32/64; tensor_content for the rest) decodes to the same array here.
    assert_same(tensor_proto_to_ndarray(tf.make_tensor_proto(array)), array)


@PROPERTY
@given(values=st.lists(st.binary(max_size=200), min_size=0, max_size=12), shape_kind=st.sampled_from(["flat", "2d"]))
def test_bytes_round_trip_matches_tensorflow(values: list[bytes], shape_kind: str) -> None:
    shape = (len(values),) if shape_kind == "flat" or len(values) % 2 else (2, len(values) // 2)
    array = as_object_bytes(values, shape)
    roundtrip_checks(array, array)
    assert_same(tensor_proto_to_ndarray(tf.make_tensor_proto(array)), array)


@PROPERTY
@given(
    array=hnp.arrays(
        "<U6",
        SHAPES,
        # numpy drops trailing NULs and UTF-8 has no surrogates: both tested apart.
        elements=st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=6),
    )
)
def test_unicode_arrays_encode_as_utf8_bytes(array: np.ndarray) -> None:
    expected = as_object_bytes([item.encode("utf-8") for item in array.ravel().tolist()], array.shape)
    roundtrip_checks(array, expected)


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        pytest.param(np.array([b"ab", b"c"]), [b"ab", b"c"], id="S-array"),
        pytest.param(np.array(["é", b"\xff", np.str_("x")], dtype=object), ["é".encode(), b"\xff", b"x"], id="mixed"),
        pytest.param(np.array("scalar"), b"scalar", id="0-d"),
    ],
)
def test_string_inputs_become_bytes(array: np.ndarray, expected: object) -> None:
    expected_array = np.empty(np.shape(expected), dtype=object)
    expected_array[...] = expected
    roundtrip_checks(array, expected_array)


@pytest.mark.parametrize(
    "array",
    [
        pytest.param(np.arange(12, dtype=np.float32).reshape(3, 4).T, id="transposed"),
        pytest.param(np.arange(20, dtype=np.int64)[::3], id="strided"),
        pytest.param(np.arange(6, dtype=">f8").reshape(2, 3), id="big-endian"),
        pytest.param(np.array(2.5, dtype=np.float16), id="scalar"),
        pytest.param(np.zeros((0, 3), dtype=np.float32), id="zero-sized"),
    ],
)
def test_layouts_encode_in_c_order_little_endian(array: np.ndarray) -> None:
    roundtrip_checks(array, array.astype(array.dtype.newbyteorder("=")))


# The typed field of each dtype, as tensor.cc's PROTO_TRAITS and ProtoHelper specialisations write it.
AS_PROTO_FIELD = {
    np.float32: "float_val",
    np.float64: "double_val",
    np.float16: "half_val",
    ml_dtypes.bfloat16: "half_val",
    np.int8: "int_val",
    np.int16: "int_val",
    np.int32: "int_val",
    np.uint8: "int_val",
    np.uint16: "int_val",
    np.int64: "int64_val",
    np.uint32: "uint32_val",
    np.uint64: "uint64_val",
    np.bool_: "bool_val",
    np.complex64: "scomplex_val",
    np.complex128: "dcomplex_val",
}
VALUE_FIELDS = [f.name for f in tensor_pb2.TensorProto.DESCRIPTOR.fields if f.name.endswith("_val")]


def set_fields(message: tensor_pb2.TensorProto) -> set[str]:
    return {f.name for f, _ in message.ListFields() if f.name.endswith("_val") or f.name == "tensor_content"}


def field_values(array: np.ndarray) -> list[object]:
    """What AsProtoField puts in the field: bit patterns for half and bfloat16, (real, imag) pairs for complex."""
    flat = array.reshape(-1)
    if flat.dtype.itemsize == 2 and flat.dtype.kind in "fV":
        return flat.view(np.uint16).tolist()
    if flat.dtype.kind == "c":
        return flat.view(flat.real.dtype).tolist()
    return flat.tolist()


@pytest.mark.parametrize("dtype", AS_PROTO_FIELD, ids=lambda d: np.dtype(d).name)
def test_typed_field_holds_every_value_as_as_proto_field_writes_it(dtype: type) -> None:
    array = np.array([[1, 0, 2], [3, 1, 0]]).astype(dtype)
    wire = tensor_pb2.TensorProto.FromString(ndarray_to_tensor_proto(array).SerializeToString())
    field = AS_PROTO_FIELD[dtype]
    assert set_fields(wire) == {field}
    assert list(getattr(wire, field)) == field_values(array)
    assert wire.dtype == tf.as_dtype(dtype).as_datatype_enum
    assert_same(tf.make_ndarray(wire), array)


@pytest.mark.parametrize("dtype", AS_PROTO_FIELD, ids=lambda d: np.dtype(d).name)
def test_tensor_content_is_what_tensorflow_cpp_writes(dtype: type) -> None:
    # tf.io.serialize_tensor is C++ AsProtoTensorContent for every type but strings.
    array = np.array([[1, 0, 2], [3, 1, 0]]).astype(dtype)
    message = ndarray_to_tensor_proto(array, tensor_content=True)
    assert set_fields(message) == {"tensor_content"}
    cpp = tensor_pb2.TensorProto.FromString(tf.io.serialize_tensor(array).numpy())
    assert message.SerializeToString() == cpp.SerializeToString()


def test_strings_go_in_string_val_or_as_an_encoded_string_list() -> None:
    array = as_object_bytes([b"ab", b"", b"\xff" * 200], (3,))
    typed = ndarray_to_tensor_proto(array)
    assert set_fields(typed) == {"string_val"}
    assert list(typed.string_val) == array.tolist()
    # AsProtoTensorContent: port::EncodeStringList, every varint length, then the bytes.
    packed = ndarray_to_tensor_proto(array, tensor_content=True)
    assert packed.tensor_content == bytes([2, 0, 0xC8, 0x01]) + b"ab" + b"\xff" * 200
    assert not packed.string_val
    assert_same(tf_parse(packed), array)


@PROPERTY
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64, np.bool_, np.complex64, np.complex128]))
def test_packed_fixed_width_fields_equal_protobufs_own_encoding(data: st.DataObject, dtype: type) -> None:
    array = data.draw(hnp.arrays(dtype, st.integers(0, 300)))
    field = AS_PROTO_FIELD[dtype]
    reference = tensor_pb2.TensorProto(dtype=tf.as_dtype(dtype).as_datatype_enum)
    reference.tensor_shape.dim.add(size=array.size)
    getattr(reference, field).extend(field_values(array))
    assert ndarray_to_tensor_proto(array).SerializeToString() == reference.SerializeToString()


def test_bfloat16_round_trips_in_half_val() -> None:
    array = np.array([1.5, -2.0, 3.0e38, np.inf], dtype=ml_dtypes.bfloat16)
    roundtrip_checks(array, array)
    assert list(ndarray_to_tensor_proto(array).half_val) == array.view(np.uint16).tolist()
    assert_same(tensor_proto_to_ndarray(tf.make_tensor_proto(array)), array)


def test_typed_fields_cover_every_value_field_tensorflow_serving_writes() -> None:
    written = set(AS_PROTO_FIELD.values()) | {"string_val"}
    # Left to resources, variants and float8, which no servable here returns.
    assert set(VALUE_FIELDS) - written == {"resource_handle_val", "variant_val", "float8_val"}


@pytest.mark.parametrize(
    ("array", "dtype", "name"),
    [
        (np.ones(2, np.float32), None, "DT_FLOAT"),
        (np.ones(2, np.float16), None, "DT_HALF"),
        (np.ones(2, np.uint16), None, "DT_UINT16"),
        (np.ones(2, np.bool_), None, "DT_BOOL"),
        (np.ones(2, np.complex128), None, "DT_COMPLEX128"),
        (np.ones(2, ml_dtypes.bfloat16), None, "DT_BFLOAT16"),
        (np.ones(2, np.float32), "DT_BFLOAT16", "DT_BFLOAT16"),
        (np.array([b"x"]), None, "DT_STRING"),
        ([[1, 2]], "DT_FLOAT", "DT_FLOAT"),
        (np.ones(2, np.float64), "DT_FLOAT", "DT_FLOAT"),
        (np.ones(2, np.int64), "DT_INT32", "DT_INT32"),
    ],
)
def test_dtype_and_shape_are_set(array: object, dtype: str | None, name: str) -> None:
    message = ndarray_to_tensor_proto(array, dtype)
    assert message.dtype == DT_NUMBER[name]
    assert [dim.size for dim in message.tensor_shape.dim] == list(np.shape(array))
    assert tf_parse(message).dtype == tf.as_dtype(message.dtype).as_numpy_dtype


def test_ints_cast_to_the_requested_float() -> None:
    message = ndarray_to_tensor_proto([[1, 2], [3, 4]], "DT_FLOAT")
    assert_same(tensor_proto_to_ndarray(message), np.array([[1, 2], [3, 4]], dtype=np.float32))


def test_fill_writes_into_a_response_map_entry_and_replaces_old_content() -> None:
    response = predict_pb2.PredictResponse()
    fill_tensor_proto(response.outputs["y"], np.arange(6, dtype=np.float32).reshape(2, 3))
    fill_tensor_proto(response.outputs["y"], np.array([b"a", b"b"], dtype=object))
    fill_tensor_proto(response.outputs["z"], np.array(7, dtype=np.int64))
    wire = predict_pb2.PredictResponse.FromString(response.SerializeToString())
    assert not wire.outputs["y"].float_val
    assert not wire.outputs["y"].tensor_shape.dim[1:]
    assert list(wire.outputs["z"].int64_val) == [7]
    assert_same(tensor_proto_to_ndarray(wire.outputs["y"]), as_object_bytes([b"a", b"b"], (2,)))
    assert_same(tf.make_ndarray(wire.outputs["z"]), np.array(7, dtype=np.int64))


# Decoding the typed *_val fields, the way other clients write tensors.

TYPED_CASES = {
    "DT_FLOAT": ("float_val", [1.5, -2.0, 3.25], np.float32),
    "DT_DOUBLE": ("double_val", [1.5, -2.0, 1e300], np.float64),
    "DT_HALF": ("half_val", np.array([1.5, -2.0, 65504], np.float16).view(np.uint16).tolist(), np.float16),
    "DT_INT8": ("int_val", [-128, 0, 127], np.int8),
    "DT_INT16": ("int_val", [-32768, 1, 32767], np.int16),
    "DT_INT32": ("int_val", [-(2**31), 1, 2**31 - 1], np.int32),
    "DT_UINT8": ("int_val", [0, 1, 255], np.uint8),
    "DT_UINT16": ("int_val", [0, 1, 65535], np.uint16),
    "DT_INT64": ("int64_val", [-(2**63), 1, 2**63 - 1], np.int64),
    "DT_UINT32": ("uint32_val", [0, 1, 2**32 - 1], np.uint32),
    "DT_UINT64": ("uint64_val", [0, 1, 2**64 - 1], np.uint64),
    "DT_BOOL": ("bool_val", [True, False, True], np.bool_),
    "DT_COMPLEX64": ("scomplex_val", [1.0, 2.0, 3.0, -4.0, 0.5, 0.0], np.complex64),
    "DT_COMPLEX128": ("dcomplex_val", [1.0, 2.0, 3.0, -4.0, 0.5, 0.0], np.complex128),
    "DT_STRING": ("string_val", [b"a", b"", b"\xff\x00"], object),
}


def typed_expected(dtype: str) -> np.ndarray:
    field, values, np_dtype = TYPED_CASES[dtype]
    if field == "half_val":
        return np.array(values, np.uint16).view(np.float16)
    if field in ("scomplex_val", "dcomplex_val"):
        return np.array(values, np.float64).view(np.complex128).astype(np_dtype)
    if np_dtype is object:
        return as_object_bytes(values, (len(values),))
    return np.array(values, dtype=np_dtype)


@pytest.mark.parametrize("dtype", TYPED_CASES)
def test_typed_fields_decode_like_tensorflow(dtype: str) -> None:
    field, values, _ = TYPED_CASES[dtype]
    message = proto(dtype, [3], **{field: values})
    expected = typed_expected(dtype)
    assert_same(tensor_proto_to_ndarray(message), expected)
    assert_same(tf_parse(message), expected)
    assert_same(tf.make_ndarray(message), expected)


@pytest.mark.parametrize("dtype", TYPED_CASES)
def test_single_value_broadcasts_to_the_shape(dtype: str) -> None:
    field, values, _ = TYPED_CASES[dtype]
    first = values[:2] if field in ("scomplex_val", "dcomplex_val") else values[:1]
    message = proto(dtype, [2, 3], **{field: first})
    ours = tensor_proto_to_ndarray(message)
    assert ours.shape == (2, 3)
    assert_same(ours, tf_parse(message))
    assert_same(ours, tf.make_ndarray(message))
    assert len(set(ours.ravel().tolist())) == 1


def test_single_float_broadcasts() -> None:
    message = proto("DT_FLOAT", [2, 3], float_val=[1.5])
    assert_same(tensor_proto_to_ndarray(message), np.full((2, 3), 1.5, dtype=np.float32))


@pytest.mark.parametrize("dtype", TYPED_CASES)
def test_fewer_values_repeat_the_last_one(dtype: str) -> None:
    field, values, _ = TYPED_CASES[dtype]
    message = proto(dtype, [2, 4], **{field: values})
    ours = tensor_proto_to_ndarray(message)
    assert_same(ours, tf_parse(message))
    assert_same(ours, tf.make_ndarray(message))
    assert ours.ravel().tolist()[2:] == [typed_expected(dtype)[-1]] * 6


@pytest.mark.parametrize("dtype", TYPED_CASES)
def test_no_values_give_zeros(dtype: str) -> None:
    message = proto(dtype, [2, 2])
    ours = tensor_proto_to_ndarray(message)
    assert_same(ours, tf_parse(message))
    if dtype != "DT_STRING":  # tf.make_ndarray pads with str "", the C++ reader with b""
        assert_same(ours, tf.make_ndarray(message))


@pytest.mark.parametrize("dtype", ["DT_FLOAT", "DT_INT32", "DT_STRING", "DT_COMPLEX64"])
def test_extra_values_are_ignored_as_tensorflow_does(dtype: str) -> None:
    # C++ FromProto copies the first n values; tf.make_ndarray would raise here.
    field, values, _ = TYPED_CASES[dtype]
    message = proto(dtype, [1], **{field: values})
    ours = tensor_proto_to_ndarray(message)
    assert_same(ours, tf_parse(message))
    assert ours.shape == (1,)


def test_int_val_narrows_with_c_casts_like_tensorflow() -> None:
    message = proto("DT_INT8", [3], int_val=[300, -129, 5])
    assert_same(tensor_proto_to_ndarray(message), tf_parse(message))
    assert tensor_proto_to_ndarray(message).tolist() == [44, 127, 5]


def test_unpaired_complex_part_is_dropped() -> None:
    message = proto("DT_COMPLEX64", [3], scomplex_val=[1.0, 2.0, 3.0])
    assert_same(tensor_proto_to_ndarray(message), tf_parse(message))
    assert tensor_proto_to_ndarray(message).tolist() == [1 + 2j] * 3


@pytest.mark.parametrize("dtype", [np.bool_, np.float16, np.complex64, np.uint64, np.int8, np.float64])
def test_tensor_content_written_by_tensorflow_cpp_decodes(dtype: type) -> None:
    # tf.io.serialize_tensor uses C++ AsProtoTensorContent: TF's own raw layout.
    array = np.array([[1, 0, 2], [3, 1, 0]]).astype(dtype)
    message = tensor_pb2.TensorProto.FromString(tf.io.serialize_tensor(array).numpy())
    assert message.tensor_content
    assert_same(tensor_proto_to_ndarray(message), array)


def test_string_tensor_content_decodes_like_tensorflow() -> None:
    long = b"\xff" * 200  # a two-byte varint length
    message = proto("DT_STRING", [3], tensor_content=bytes([2, 0]) + bytes([0xC8, 0x01]) + b"ab" + long)
    expected = as_object_bytes([b"ab", b"", long], (3,))
    assert_same(tensor_proto_to_ndarray(message), expected)
    assert_same(tf_parse(message), expected)


def test_unknown_rank_is_ignored_like_tensorflow() -> None:
    message = proto("DT_FLOAT", [2], float_val=[1.0])
    message.tensor_shape.unknown_rank = True
    assert_same(tensor_proto_to_ndarray(message), tf_parse(message))


def test_zero_elements_ignore_values_and_content() -> None:
    message = proto("DT_FLOAT", [0, 3], tensor_content=b"\x00" * 4, float_val=[1.0])
    assert_same(tensor_proto_to_ndarray(message), np.zeros((0, 3), np.float32))
    assert_same(tf_parse(message), np.zeros((0, 3), np.float32))


def test_tensor_content_wins_over_typed_fields() -> None:
    message = proto("DT_INT32", [2], int_val=[7], tensor_content=np.array([1, 2], "<i4").tobytes())
    assert tensor_proto_to_ndarray(message).tolist() == [1, 2] == tf_parse(message).tolist()


def test_decoded_arrays_are_read_only_unless_copied() -> None:
    for message in (ndarray_to_tensor_proto(np.ones(3, np.float32)), proto("DT_FLOAT", [3], float_val=[1.0])):
        assert not tensor_proto_to_ndarray(message).flags.writeable
        copied = tensor_proto_to_ndarray(message, copy=True)
        copied[0] = 5.0
        assert tensor_proto_to_ndarray(message)[0] == 1.0


# Errors.


def bad_protos() -> list[object]:
    rank_255 = proto("DT_FLOAT", [1] * 255)
    return [
        pytest.param(tensor_pb2.TensorProto(), "DT_INVALID", id="invalid-dtype"),
        pytest.param(proto("DT_QINT8", [1], int_val=[0]), "DT_QINT8", id="quantized"),
        pytest.param(proto("DT_RESOURCE", [1]), "DT_RESOURCE", id="resource"),
        pytest.param(tensor_pb2.TensorProto(dtype=42), "DataType 42", id="unknown-dtype"),
        pytest.param(proto("DT_FLOAT", [-1], float_val=[1.0]), "must be known", id="negative-dim"),
        pytest.param(rank_255, "rank 255", id="rank-255"),
        pytest.param(proto("DT_FLOAT", [2**40, 2**40]), "too many elements", id="overflow"),
        pytest.param(proto("DT_FLOAT", [2, 3], tensor_content=b"\x00" * 20), "20 bytes", id="content-short"),
        pytest.param(proto("DT_FLOAT", [1], tensor_content=b"\x00" * 8), "8 bytes", id="content-long"),
        pytest.param(proto("DT_BOOL", [2], tensor_content=b"\x00\x02"), "0 or 1", id="bool-byte"),
        pytest.param(proto("DT_STRING", [2], tensor_content=bytes([2, 3]) + b"abxy"), "do not match", id="str-short"),
        pytest.param(proto("DT_STRING", [2], tensor_content=bytes([2, 0x80])), "length prefix", id="str-varint"),
    ]


@pytest.mark.parametrize(("message", "words"), bad_protos())
def test_bad_protos_raise_invalid_argument(message: tensor_pb2.TensorProto, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words) as caught:
        tensor_proto_to_ndarray(message)
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("message", "words"),
    [p for p in bad_protos() if p.id not in {"invalid-dtype", "unknown-dtype", "quantized", "resource"}],
)
def test_tensorflow_refuses_the_same_protos(message: tensor_pb2.TensorProto, words: str) -> None:
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf_parse(message)


@pytest.mark.parametrize(
    ("array", "dtype", "words"),
    [
        pytest.param(np.array([b"a", None], dtype=object), None, "NoneType", id="object-none"),
        pytest.param(np.array([b"a", 3], dtype=object), None, "int", id="object-int"),
        pytest.param(np.ones(2), "DT_STRING", "as DT_STRING", id="number-as-string"),
        pytest.param(np.array(["1.5"]), "DT_FLOAT", "strings as DT_FLOAT", id="string-as-number"),
        pytest.param(np.array([1.5]), "DT_INT32", "as DT_INT32", id="float-as-int"),
        pytest.param(np.ones(2), "DT_FOO", "DT_FOO", id="unknown-name"),
        pytest.param(np.ones(2), "DT_QINT8", "DT_QINT8", id="quantized"),
        pytest.param(np.array(["2020-01-01"], dtype="datetime64[D]"), None, "datetime64", id="datetime"),
        pytest.param(np.array(["\ud800"]), None, "not valid Unicode", id="lone-surrogate"),
    ],
)
def test_unencodable_arrays_raise_invalid_argument(array: np.ndarray, dtype: str | None, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        ndarray_to_tensor_proto(array, dtype)
