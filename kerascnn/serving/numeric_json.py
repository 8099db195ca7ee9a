"""`:predict` bodies of plain numbers straight into NumPy arrays.

Most REST requests carry one numeric tensor (`{"instances": [[[0.1, ...
]]]}`). Parsing that into Python lists and then into an array costs more
than everything else a request does (a 28x28 digit: ~130 us, a 32x32x3
image: ~300 us); simdjson (pysimdjson) parses the document and copies
the numbers out of its tape into one buffer in a tenth of that. The
buffer is flat, so the nesting is checked apart: the body with its
numbers and whitespace taken out must be exactly the document it claims
to be, its array written as the brackets and commas of a rectangular
array of the shape read along the first elements (one C-speed
`bytes.translate` and a comparison).

Anything else (several inputs, named instances, strings, `{"b64": ...}`,
bools, a ragged or empty array, escapes in a string, a signature that is
not there, a malformed body) returns `None`, and the general codec in
`handlers` parses the body and gives its answer or its error, so both
paths accept and refuse exactly the same requests.
"""

import math

import numpy as np

from kerascnn.serving.arrays import check_range, fits, spec_dims
from kerascnn.serving.budget import is_batched

try:
    import simdjson
except ImportError:  # pragma: no cover (pysimdjson is in install_requires)
    simdjson = None

_KEYS = {"instances", "inputs", "signature_name"}
_NUMBERS_AND_SPACE = b"0123456789.-+eE \t\n\r"
# Buffer type simdjson fills for a signature dtype, and its NumPy type.
_BUFFER_TYPES = {
    "float16": ("d", np.float64),
    "float32": ("d", np.float64),
    "float64": ("d", np.float64),
    "int32": ("i", np.int64),
    "int64": ("i", np.int64),
}


def parse_object(body):
    """The body (bytes) as a simdjson object, or `None` (not an object,
    not JSON, a repeated or unknown key, or no simdjson)."""
    if simdjson is None or not body:
        return None
    try:
        document = simdjson.Parser().parse(body)
    except (ValueError, RuntimeError, TypeError):
        return None
    if not isinstance(document, simdjson.Object):
        return None
    keys = list(document.keys())
    if len(set(keys)) != len(keys) or not set(keys) <= _KEYS:
        return None
    return document


def predict_feeds(body, document, signature, budget=None):
    """`(signature, {input: array}, row_format)`, or `None` when the
    request is not one plain numeric tensor for a one-input signature.

    The shape is read first and checked against the signature and the
    `RequestBudget` (rows) before the numbers are copied or the nesting
    is checked; a shape the signature does not take goes to the general
    codec, which words the error.

    Args:
        body: the raw body (bytes) that `document` was parsed from.
        document: `parse_object(body)`.
        signature: the `layout.Signature` the request names, or `None`
            when the model has no such signature (the general codec
            words that error).
        budget: a `RequestBudget`, or `None`.
    """
    if signature is None or len(signature.inputs) != 1:
        return None
    has_rows, has_columns = "instances" in document, "inputs" in document
    if has_rows == has_columns:
        return None
    key = "instances" if has_rows else "inputs"
    ((input_name, spec),) = signature.inputs.items()
    value = document[key]
    if spec.dtype.name not in _BUFFER_TYPES:
        return None
    if not isinstance(value, simdjson.Array):
        return None
    shape = _shape_along_first_elements(value)
    if shape is None or not fits(shape, spec.shape):
        return None
    dims = spec_dims(spec.shape)
    if budget is not None and (dims is None or dims[0] is None):
        budget.check_rows(input_name, shape[0])
    array = numeric_array(value, spec.dtype.name, shape)
    if array is None or not _is_written_as(body, document, key, array.shape):
        return None
    with np.errstate(over="ignore"):
        result = array.astype(spec.dtype.name, copy=False)
    check_range(input_name, array, result)
    feeds = {input_name: result}
    return signature, feeds, has_rows


def check_rows(document, signature, budget):
    """Counts a request's rows on its simdjson `document` against the
    `RequestBudget`, by the general codec's rule, so a body with too
    many rows gets its 400 before `orjson` turns it into Python objects
    (an 8 MB body of 300,000 small rows: ~0.08 s here against ~1.2 s,
    holding the GIL). Array lengths only: nothing is copied. Anything
    the general codec would refuse for another reason is left to it.
    """
    if budget is None or signature is None:
        return
    has_rows, has_columns = "instances" in document, "inputs" in document
    if has_rows == has_columns:
        return
    value = document["instances" if has_rows else "inputs"]
    if has_rows:
        if isinstance(value, simdjson.Array):
            budget.check_rows("instances", len(value))
        return
    names = list(signature.inputs)
    if isinstance(value, simdjson.Object) and set(value.keys()) == set(names):
        columns = {name: value[name] for name in names}
    elif len(names) == 1:
        columns = {names[0]: value}
    else:
        return
    for name, column in columns.items():
        if isinstance(column, simdjson.Array) and is_batched(
            signature.inputs[name]
        ):
            budget.check_rows(name, len(column))


def numeric_array(value, dtype_name, shape=None):
    """A simdjson array of numbers as an array shaped along its first
    elements (float64 or int64, the buffer's type: `astype(dtype_name)`
    gives the signature's), or `None` (another dtype, a non-number, an
    empty array). Its nesting is not checked here (see
    `_is_written_as`)."""
    if dtype_name not in _BUFFER_TYPES or not isinstance(value, simdjson.Array):
        return None
    if shape is None:
        shape = _shape_along_first_elements(value)
    if shape is None:
        return None
    buffer_type, buffer_dtype = _BUFFER_TYPES[dtype_name]
    try:
        flat = np.frombuffer(value.as_buffer(of_type=buffer_type), buffer_dtype)
    except (TypeError, ValueError, RuntimeError):  # a string, bool, null...
        return None
    if flat.size != math.prod(shape):
        return None
    return flat.reshape(shape)


def _shape_along_first_elements(value):
    shape = []
    while isinstance(value, simdjson.Array):
        if len(value) == 0:
            return None
        shape.append(len(value))
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return tuple(shape)


def _is_written_as(body, document, array_key, shape):
    """True when `body`, numbers and whitespace taken out, is `document`
    with the array under `array_key` rectangular of `shape`.

    Only a body without escapes qualifies: its strings (the keys, a
    `signature_name`) are then written exactly as their values, so the
    array's part is the only one that can differ.
    """
    if b"\\" in body:
        return False
    members = []
    for key in document.keys():
        value = document[key]
        text = skeleton(shape) if key == array_key else _quoted(value)
        members.append(_quoted(key) + b":" + text)
    expected = b"{" + b",".join(members) + b"}"
    strip = _NUMBERS_AND_SPACE
    return body.translate(None, strip) == expected.translate(None, strip)


def _quoted(text):
    return b'"' + text.encode("utf-8") + b'"'


# Skeletons of shapes that fit a signature, when small: the same few
# shapes repeat (one digit, one image); a large one is built per request
# and dropped with it, so no request-sized bytes outlive their request.
_SKELETONS = {}
_CACHED_SKELETONS = 64
_CACHED_SKELETON_BYTES = 16 * 1024


def skeleton(shape):
    """The brackets and commas of a rectangular array of `shape` written
    as minified JSON (`(2, 3)` -> `[[,,],[,,]]`)."""
    shape = tuple(shape)
    cached = _SKELETONS.get(shape)
    if cached is not None:
        return cached
    if not shape:
        return b""
    inner = skeleton(shape[1:])
    text = b"[" + b",".join([inner] * shape[0]) + b"]"
    if len(text) <= _CACHED_SKELETON_BYTES:
        if len(_SKELETONS) >= _CACHED_SKELETONS:
            _SKELETONS.pop(next(iter(_SKELETONS)))
        _SKELETONS[shape] = text
    return text
