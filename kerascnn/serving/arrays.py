"""JSON values and client arrays to NumPy arrays checked against a signature.

The REST codec (`handlers`) and the gRPC service both end here, so a value
is accepted or refused by one set of rules: dtype kinds that convert
without loss (TF Serving rejects `3.0` for an integer input), rectangular
nesting, and `{"b64": ...}` for bytes. Shapes are checked apart
(`check_shapes`), because a TF1 graph model lets TensorFlow judge them,
as TF Serving does (it takes `[2, 3, 4]` for an `x` of static shape
`(-1, 1)`).
"""

import base64
import binascii
import functools
import math

import numpy as np

from kerascnn.serving.errors import BadRequest

_NUMERIC_KINDS = {
    "f": "biuf",  # float inputs take ints and bools too, as JSON numbers
    "i": "bi",
    "u": "bu",
    "b": "b",
}


# TF's DataTypeString names, which TF Serving's messages use.
_TF_TYPE_NAMES = {"float32": "float", "float64": "double", "float16": "half"}


def shape_text(shape):
    """`(-1, 28, 28, 1)`: TF Serving's way of writing unknown dims."""
    dims = ["-1" if d is None else str(int(d)) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def is_b64(value):
    """True for a `{"b64": "..."}` value."""
    return isinstance(value, dict) and set(value) == {"b64"}


def check_keys(signature, row, where):
    """`BadRequest` unless `row`'s keys are exactly the signature's inputs."""
    names = set(signature.inputs)
    missing, extra = names - set(row), set(row) - names
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {sorted(missing)}")
        if extra:
            parts.append(f"unknown {sorted(extra)}")
        raise BadRequest(
            f"{where} does not match the inputs of signature "
            f"{signature.name!r} ({', '.join(parts)}); expected "
            f"{sorted(names)}."
        )


def to_array(name, value, spec):
    """Converts one input's JSON value to an array checked against `spec`."""
    dtype = spec.dtype
    if dtype.name == "string":
        array = _string_array(name, value)
    else:
        array = _numeric_array(name, value, dtype.as_numpy_dtype)
    return array


def fits(shape, spec_shape):
    """True when `shape` fits the spec's rank and fixed dimensions."""
    expected = spec_dims(spec_shape)
    if expected is None:
        return True
    return len(shape) == len(expected) and all(
        e is None or e == d for e, d in zip(expected, shape)
    )


@functools.lru_cache(maxsize=1024)
def spec_dims(spec_shape):
    """A signature's `TensorShape` as a tuple (`None` for an unknown
    rank), remembered: the same few specs are checked on every request."""
    if spec_shape.rank is None:
        return None
    return tuple(None if d is None else int(d) for d in spec_shape)


def check_shapes(signature, feeds):
    """`BadRequest` unless every feed fits its input's rank and fixed
    dimensions."""
    for name, array in feeds.items():
        spec = signature.inputs.get(name)
        if spec is None:
            continue
        mismatch = shape_mismatch(name, np.shape(array), spec.shape)
        if mismatch:
            raise BadRequest(mismatch + ".")


def shape_mismatch(name, shape, spec_shape):
    """`"input 'x' expects shape (-1, 2); received (3,)"`, or `None`."""
    if fits(shape, spec_shape):
        return None
    return (
        f"input {name!r} expects shape {shape_text(list(spec_shape))}; "
        f"received {shape_text(shape)}"
    )


def _numeric_array(name, value, np_dtype):
    try:
        array = np.asarray(value)
    except ValueError:
        raise BadRequest(
            f"input {name!r} is not a rectangular array: every row must "
            "have the same length."
        ) from None
    if array.dtype.kind in "USO":
        target = np.dtype(np_dtype).name
        hint = (
            '; encoded images ({"b64": ...}) go to a signature that takes '
            'bytes: add "signature_name": "predict_images"'
            if _holds_b64(value)
            else ""
        )
        raise BadRequest(
            f"input {name!r} is not of expected type: "
            f"{_TF_TYPE_NAMES.get(target, target)} (expects {target} "
            f"numbers; received text or an object{hint})."
        )
    if array.dtype.kind not in "biuf":
        raise BadRequest(
            f"input {name!r} is not a rectangular array of numbers."
        )
    target = np.dtype(np_dtype)
    if array.dtype.kind not in _NUMERIC_KINDS.get(target.kind, "biuf"):
        # TF Serving rejects 3.0 for an integer input, as we do.
        raise BadRequest(
            f"input {name!r} expects {target.name} values; received "
            f"{array.dtype.name} values."
        )
    with np.errstate(over="ignore"):
        result = array.astype(target, copy=False)
    check_range(name, array, result)
    return result


def check_range(name, source, result):
    """`BadRequest` when converting `source` to the narrower float
    `result` overflowed (`1e39` for float32 would silently be infinity).

    One float64 sum of `result` in the common case (finite: nothing
    overflowed); the culprit is looked for only when it is not.
    """
    if result.dtype.kind != "f" or source.dtype.kind != "f" or not result.size:
        return
    if source.dtype.itemsize <= result.dtype.itemsize:
        return
    if math.isfinite(np.add.reduce(result, axis=None, dtype=np.float64)):
        return
    with np.errstate(invalid="ignore"):
        over = ~np.isfinite(result) & np.isfinite(source)
    if over.any():
        value = source.reshape(-1)[int(np.argmax(over.reshape(-1)))]
        largest = float(np.finfo(result.dtype).max)
        raise BadRequest(
            f"input {name!r} has a value out of range for "
            f"{result.dtype.name}: {float(value):g} (largest: {largest:g})."
        )


def _holds_b64(value):
    """Whether a JSON value is, or nests, a `{"b64": ...}` object."""
    if isinstance(value, list):
        return any(_holds_b64(v) for v in value[:8])
    return is_b64(value)


def _string_array(name, value):
    def convert(v):
        if isinstance(v, list):
            return [convert(x) for x in v]
        if is_b64(v):
            return _b64decode(name, v["b64"])
        if isinstance(v, str):
            return v.encode("utf-8")
        raise BadRequest(
            f'input {name!r} expects strings or {{"b64": ...}} objects; '
            f"received {type(v).__name__} {_short(v)}."
        )

    converted = convert(value)
    shape = _nested_shape(name, converted)
    array = np.empty(shape, dtype=object)
    if shape:
        array[...] = _leaves_as_object_array(converted, shape)
    else:
        array[()] = converted
    return array


def _leaves_as_object_array(nested, shape):
    flat = []

    def walk(v):
        if isinstance(v, list):
            for x in v:
                walk(x)
        else:
            flat.append(v)

    walk(nested)
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(shape)


def _nested_shape(name, value):
    """Shape of a nested list of leaves; `BadRequest` if it is ragged."""
    if not isinstance(value, list):
        return ()
    shapes = {_nested_shape(name, v) for v in value}
    if len(shapes) > 1:
        raise BadRequest(
            f"input {name!r} is not a rectangular array: every row must "
            "have the same length."
        )
    return (len(value), *(shapes.pop() if shapes else ()))


def _b64decode(name, text):
    if not isinstance(text, str):
        raise BadRequest(f"input {name!r}: the 'b64' value must be a string.")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as e:
        raise BadRequest(
            f"input {name!r}: invalid base64 in a 'b64' value ({e})."
        ) from None


def _short(value, limit=40):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def check_arrays(signature, inputs):
    """Validates `{name: array}` from an API client (gRPC, Python).

    Returns `{name: np.ndarray}` in the signature's dtypes; `BadRequest`
    for a missing or unknown name or a dtype that does not convert
    without loss. Shapes are left to TensorFlow (see the module doc).
    """
    if not isinstance(inputs, dict):
        raise BadRequest("inputs must be a dict of input name -> array.")
    check_keys(signature, inputs, "inputs")
    feeds = {}
    for name, value in inputs.items():
        spec = signature.inputs[name]
        array = np.asarray(value)
        if spec.dtype.name == "string":
            if array.dtype.kind not in "OSU":
                raise BadRequest(
                    f"input {name!r} expects strings; received "
                    f"{array.dtype.name} values."
                )
            array = array.astype(object)
        else:
            target = np.dtype(spec.dtype.as_numpy_dtype)
            allowed = _NUMERIC_KINDS.get(target.kind, "biuf")
            if array.dtype.kind not in allowed:
                raise BadRequest(
                    f"input {name!r} expects {target.name} values; "
                    f"received {array.dtype.name} values."
                )
            array = array.astype(target, copy=False)
        feeds[name] = array
    return feeds
