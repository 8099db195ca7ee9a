"""Open Inference Protocol tensors: datatypes, raw bytes, sizes.

Nothing here knows about HTTP or gRPC. A v2 tensor is a name, a datatype
(`FP32`, `INT64`, `BYTES`, ...), a shape and its elements, given either
as a JSON list (flat or nested, row-major) or as raw bytes: little-endian
values without padding, and for `BYTES` each element as a 4-byte
little-endian length followed by its bytes (Triton's binary data
extension over HTTP, `raw_input_contents` over gRPC).

`check_budget` is the one place a request's claimed sizes are checked
(shape x datatype against the bytes present and against the server's
limit) before anything is allocated for it.
"""

import dataclasses
import functools
import math
import struct

import numpy as np
import tensorflow as tf

from kerascnn.serving import arrays
from kerascnn.serving.errors import BadRequest, PayloadTooLarge

# TF dtype name -> v2 datatype (the protocol's tensor data types).
DATATYPES = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "bfloat16": "BF16",
    "string": "BYTES",
}
BYTES = "BYTES"
_LENGTH = struct.Struct("<I")


@dataclasses.dataclass
class Tensor:
    """One input tensor of a v2 request, not yet converted.

    Attributes:
        name: the tensor's name (a signature input).
        datatype: the v2 datatype, e.g. `"FP32"`.
        shape: list of non-negative ints.
        data: the JSON `data` (a list, flat or nested), or `None`.
        raw: the raw bytes (a `bytes` or `memoryview`), or `None`.
        values: a flat array of gRPC's typed `contents`, or `None`.
    """

    name: str
    datatype: str
    shape: list
    data: object = None
    raw: object = None
    values: object = None


def datatype_of(dtype):
    """The v2 datatype of a `tf.DType` (`"FP32"`, `"BYTES"`, ...)."""
    try:
        return DATATYPES[dtype.name]
    except KeyError:
        raise BadRequest(
            f"The Open Inference Protocol has no datatype for {dtype.name}."
        ) from None


@functools.lru_cache(maxsize=None)
def numpy_dtype(datatype):
    """The little-endian NumPy dtype of a fixed-size v2 datatype (`None`
    for BYTES)."""
    if datatype == BYTES:
        return None

    name = next((k for k, v in DATATYPES.items() if v == datatype), None)
    if name is None:
        raise BadRequest(
            f"Unknown datatype {datatype!r}. Datatypes: "
            f"{', '.join(sorted(set(DATATYPES.values())))}."
        )
    return np.dtype(tf.dtypes.as_dtype(name).as_numpy_dtype).newbyteorder("<")


def shape_metadata(spec):
    """A `TensorSpec`'s shape for metadata: `-1` for a variable size, and
    `[-1]` for an unknown rank (the protocol has no way to say "any
    rank"; clients read it as "variable")."""
    if spec.shape.rank is None:
        return [-1]
    return [-1 if d is None else int(d) for d in spec.shape]


def tensor_metadata(name, spec):
    """`{"name", "datatype", "shape"}` of one signature tensor."""
    return {
        "name": name,
        "datatype": datatype_of(spec.dtype),
        "shape": shape_metadata(spec),
    }


def parse_shape(name, shape):
    """A request tensor's shape as a list of ints, checked."""
    if not isinstance(shape, (list, tuple)) or not all(
        isinstance(d, int) and not isinstance(d, bool) for d in shape
    ):
        raise BadRequest(
            f"Input {name!r}: 'shape' must be a list of integers; "
            f"received {shape!r}."
        )
    if any(d < 0 for d in shape):
        raise BadRequest(
            f"Input {name!r}: shape {list(shape)} has a negative dimension."
        )
    return [int(d) for d in shape]


# === Sizes ===


def check_budget(tensors, max_bytes):
    """Checks every tensor's claimed size before anything is allocated.

    Fixed-size datatypes need `prod(shape) x itemsize` bytes: raw bytes
    must have exactly that many, and the sum over the request must not
    exceed `max_bytes`. BYTES tensors are counted by the bytes present.

    Raises:
        BadRequest: raw bytes of the wrong size.
        PayloadTooLarge: the request's tensors need more than `max_bytes`.
    """
    total = 0
    for tensor in tensors:
        count = math.prod(tensor.shape)
        dtype = numpy_dtype(tensor.datatype)
        if dtype is None:
            needed = len(tensor.raw) if tensor.raw is not None else count
        else:
            needed = count * dtype.itemsize
            if tensor.raw is not None and len(tensor.raw) != needed:
                raise BadRequest(
                    f"Input {tensor.name!r}: shape {tensor.shape} of "
                    f"{tensor.datatype} needs {needed} bytes; received "
                    f"{len(tensor.raw)}."
                )
        total += needed
        if total > max_bytes:
            raise PayloadTooLarge(
                f"The request's tensors need {total} bytes or more, over the "
                f"limit of {max_bytes} bytes."
            )
    return total


# === Tensors to arrays ===


def to_array(tensor, spec):
    """`tensor` as a NumPy array for a signature input `spec`.

    The datatype must be the input's, exactly (no FP64 for an FP32
    input), as Triton requires; the elements must fill the shape.
    """
    expected = datatype_of(spec.dtype)
    if tensor.datatype != expected:
        raise BadRequest(
            f"Input {tensor.name!r} has datatype {tensor.datatype}; the "
            f"model expects {expected}."
        )
    count = math.prod(tensor.shape)
    if tensor.raw is not None:
        array = _from_raw(tensor, count)
    elif tensor.values is not None:
        array = tensor.values
    elif tensor.data is not None:
        array = _from_json(tensor, spec)
    else:
        raise BadRequest(f"Input {tensor.name!r} has no data.")
    if array.size != count:
        raise BadRequest(
            f"Input {tensor.name!r}: shape {tensor.shape} needs {count} "
            f"elements; received {array.size}."
        )
    return array.reshape(tensor.shape)


def _from_raw(tensor, count):
    if tensor.datatype == BYTES:
        return deserialize_bytes(tensor.name, tensor.raw, count)
    dtype = numpy_dtype(tensor.datatype)
    array = np.frombuffer(tensor.raw, dtype=dtype)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _from_json(tensor, spec):
    data = tensor.data
    if not isinstance(data, list):
        data = [data]
    if tensor.datatype == BYTES:
        flat = _flatten(tensor.name, data)
        array = np.empty(len(flat), dtype=object)
        for i, value in enumerate(flat):
            if not isinstance(value, str):
                raise BadRequest(
                    f"Input {tensor.name!r} is BYTES: its JSON data must be "
                    f"strings; received {type(value).__name__}."
                )
            array[i] = value.encode("utf-8")
        return array
    try:
        array = np.asarray(data)
    except ValueError:
        array = np.asarray(_flatten(tensor.name, data))
    if array.dtype.kind not in "biuf":
        raise BadRequest(
            f"Input {tensor.name!r} is {tensor.datatype}: its JSON data must "
            "be numbers."
        )
    target = np.dtype(spec.dtype.as_numpy_dtype)
    if target.kind in "iu" and array.dtype.kind == "f":
        raise BadRequest(
            f"Input {tensor.name!r} is {tensor.datatype}: received "
            "non-integer numbers."
        )
    result = array.astype(target, copy=False).reshape(-1)
    arrays.check_range(tensor.name, array, result)
    return result


def _flatten(name, data):
    flat = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
    return flat


def deserialize_bytes(name, raw, count):
    """`count` length-prefixed elements of a BYTES tensor."""
    view = memoryview(raw)
    array = np.empty(count, dtype=object)
    offset = 0
    for i in range(count):
        if offset + 4 > len(view):
            raise BadRequest(
                f"Input {name!r}: its BYTES data ends after {i} of {count} "
                "elements."
            )
        (size,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        if offset + size > len(view):
            raise BadRequest(
                f"Input {name!r}: element {i} claims {size} bytes; only "
                f"{len(view) - offset} remain."
            )
        array[i] = bytes(view[offset : offset + size])
        offset += size
    if offset != len(view):
        raise BadRequest(
            f"Input {name!r}: {len(view) - offset} bytes left over after "
            f"{count} BYTES elements."
        )
    return array


# === Arrays to tensors ===


def output_datatype(array):
    """The v2 datatype of an output array."""
    return _datatype_of_numpy(array.dtype)


@functools.lru_cache(maxsize=None)
def _datatype_of_numpy(dtype):
    if dtype.kind in "OSU":
        return BYTES

    return datatype_of(tf.dtypes.as_dtype(dtype))


def serialize_bytes(array):
    """A BYTES array as length-prefixed elements."""
    parts = []
    for value in np.asarray(array).reshape(-1):
        if isinstance(value, str):
            value = value.encode("utf-8")
        value = bytes(value)
        parts.append(_LENGTH.pack(len(value)))
        parts.append(value)
    return b"".join(parts)


def to_raw(array):
    """An output array's raw bytes (little-endian, row-major)."""
    array = np.asarray(array)
    if array.dtype.kind in "OSU":
        return serialize_bytes(array)
    little = array.dtype.newbyteorder("<")
    return np.ascontiguousarray(array, dtype=little).tobytes()


def to_json_data(name, array):
    """An output array as the flat JSON `data` list.

    BYTES elements become UTF-8 text; elements that are not UTF-8 need
    the binary data extension.
    """
    flat = np.asarray(array).reshape(-1)
    if flat.dtype.kind not in "OSU":
        if flat.dtype.name in ("float16", "bfloat16"):
            flat = flat.astype(np.float32)  # what orjson can write
        return flat
    values = []
    for value in flat.tolist():
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest(
                    f"Output {name!r} holds bytes that are not UTF-8; ask "
                    "for it as binary data (parameters binary_data: true)."
                ) from None
        values.append(value)
    return values
