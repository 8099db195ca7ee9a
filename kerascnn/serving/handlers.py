"""TF Serving's REST dialect: JSON requests to tensors, tensors to JSON.

Nothing here knows about HTTP. `parse_predict` turns a `:predict` body
into the signature to call and one NumPy array per input, validated
against the signature's `TensorSpec`s (dtype, rank, fixed dimensions);
`signatures.run_signature` calls it; `format_predict` shapes the answer
the way TensorFlow Serving does:

    {"instances": [...]}  (row format)     ->  {"predictions": [...]}
    {"inputs": ...}       (columnar)       ->  {"outputs": ...}

For a signature with one input, instances are bare values; with several,
each instance is an object keyed by input name. Binary values travel as
`{"b64": "..."}` and are decoded to bytes for string inputs. With several
outputs, each prediction is an object keyed by output name; bytes outputs
come back as UTF-8 text (as `{"b64": ...}` when they are not UTF-8).

`:classify` and `:regress` bodies (`{"examples": [...], "context": ...}`)
become serialized `tf.Example`s (`examples_from_json`), as in TF Serving's
json_tensor.cc: an integer or a bool is an `int64_list` value, a number
with a fraction or an exponent a `float_list` value, a string or
`{"b64": ...}` a `bytes_list` value; a feature's values must share one
kind. `classify_json` and `regress_json` write their results.
"""

import base64
import binascii
import dataclasses
import functools
import json
import re
import urllib.parse

import numpy as np

try:  # parses number arrays faster than the standard library's json
    import orjson
except ImportError:  # pragma: no cover (orjson is in install_requires)
    orjson = None

import tensorflow as tf

from kerascnn.serving import inference, numeric_json
from kerascnn.serving.arrays import check_keys, is_b64, to_array
from kerascnn.serving.budget import is_batched
from kerascnn.serving.errors import BadRequest
from kerascnn.serving.signatures import DEFAULT_SIGNATURE, unknown_signature

_TOO_DEEP = "The JSON body is nested too deeply."
BYTES_SUFFIX = "_bytes"  # TF Serving base64-encodes exactly these outputs


# === Routes ===

# TF Serving's own path grammar (http_rest_api_util): a version is `\d+`,
# a label anything without `/` or `:`; matching ignores case.
_PREDICTION_PATH = re.compile(
    r"/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r":(?P<method>classify|regress|predict)",
    re.IGNORECASE,
)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/(?P<name>[^/:]+))?"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?:/(?P<metadata>metadata))?",
    re.IGNORECASE,
)
API_PREFIX = re.compile(r"/v1/", re.IGNORECASE)
MAX_VERSION = 2**63 - 1


@dataclasses.dataclass(frozen=True)
class Route:
    """A parsed REST path.

    Attributes:
        name: the model name (URL-decoded).
        version: an int, or `None`.
        kind: "status", "metadata", "predict", "classify" or "regress".
        label: a version label (`/labels/<label>`), or `None`.
    """

    name: str
    version: int
    kind: str
    label: str = None


@functools.lru_cache(maxsize=1024)
def parse_route(method, path):
    """Parses a path under `/v1/` the way TF Serving does (remembered:
    clients repeat the same few paths).

    Anything TF Serving's grammar does not match (another HTTP method, a
    trailing slash, `/versions/abc`, `:explain`) is its `400 Malformed
    request: <METHOD> <path>`.

    Raises:
        BadRequest: a malformed path, a missing model name, or a version
            that does not fit in an int64.
    """
    raw = urllib.parse.urlsplit(path).path
    pattern = {"POST": _PREDICTION_PATH, "GET": _STATUS_PATH}.get(method)
    match = pattern.fullmatch(raw) if pattern is not None else None
    if match is None:
        raise BadRequest(f"Malformed request: {method} {raw}")
    name = urllib.parse.unquote(match["name"] or "")
    label = match["label"]
    if label is not None:
        label = urllib.parse.unquote(label)
    version = match["version"]
    if version is not None:
        number = int(version)
        if number > MAX_VERSION:
            raise BadRequest(
                f"Failed to convert version: {version} to numeric."
            )
        version = number
    if method == "POST":
        kind = match["method"].lower()
    else:
        if not name:
            raise BadRequest("Missing model name in request.")
        kind = "metadata" if match["metadata"] else "status"
    return Route(name, version, kind, label)


# === Signatures ===


def signature_def_map_json(signature_defs):
    """TF Serving's JSON of a `SignatureDefMap`, from the SavedModel's own
    `SignatureDef` protos: graph tensor names (`x:0`), method names,
    `unknown_rank`, `defaults`; every field printed, as TF Serving does."""
    from google.protobuf import json_format

    return {
        "signature_def": {
            key: json_format.MessageToDict(
                proto,
                preserving_proto_field_name=True,
                always_print_fields_with_no_presence=True,
            )
            for key, proto in signature_defs.items()
        }
    }


# === Requests ===


def parse_json(body):
    """The request body as a JSON object, or `BadRequest`."""
    try:
        if orjson is not None:
            request = orjson.loads(body)
        else:
            text = body.decode("utf-8") if isinstance(body, bytes) else body
            request = json.loads(text)
    except RecursionError:
        raise BadRequest(_TOO_DEEP) from None
    except (UnicodeDecodeError, ValueError) as e:
        if "depth" in str(e):  # orjson (>= 3.9) stops at 1024 levels
            raise BadRequest(_TOO_DEEP) from None
        # TF Serving's wording first ("JSON Parse error: ..."), then ours.
        reason = "The document is empty" if not body else "Invalid value"
        raise BadRequest(
            f"JSON Parse error: {reason}. Malformed JSON in the request "
            f"body: {e}"
        ) from None
    if not isinstance(request, dict):
        raise BadRequest(
            "The request body must be a JSON object such as "
            '{"instances": [...]} or {"inputs": ...}; received '
            f"{type(request).__name__}."
        )
    return request


def dumps(answer):
    """JSON bytes of an answer (orjson when installed); NumPy numbers
    (`format_predict(..., numpy_numbers=True)`) included."""
    if orjson is not None:
        return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
    return json.dumps(answer, default=_plain).encode("utf-8")


def _plain(value):
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def signature_name_of(request):
    """A request's `signature_name` (default `serving_default`)."""
    name = request.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(name, str):
        raise BadRequest(
            f"'signature_name' key must be a string value. Received: {name!r}."
        )
    return name or DEFAULT_SIGNATURE


def find_signature(signatures, request):
    """The `Signature` named by `signature_name` (default serving_default)."""
    name = signature_name_of(request)
    if name not in signatures:
        raise unknown_signature(name, signatures)
    return signatures[name]


def parse_predict(signatures, request, budget=None):
    """Returns `(signature, {input name: np.ndarray}, row_format)`.

    With a `RequestBudget`, the rows of the request are counted against
    it before any array is built. A body nested too deeply for the
    converters is a `BadRequest`, not a crash.
    """
    try:
        return _parse_predict(signatures, request, budget)
    except RecursionError:
        raise BadRequest(_TOO_DEEP) from None


def parse_predict_body(body, lookup, budget=None):
    """`(signature, feeds, row_format)` of a raw `:predict` body.

    One plain numeric tensor takes the fast path (`numeric_json`);
    everything else goes through `parse_json` and `parse_predict`, with
    the same answers and errors. `lookup(signature_name)` gives the
    model's signatures; it is called only once the body is known to be
    JSON, so a malformed body is reported before an unknown model, as TF
    Serving does. With a `RequestBudget`, rows are counted before any
    array is built.
    """
    if isinstance(body, str):
        body = body.encode("utf-8")
    signatures = None
    document = numeric_json.parse_object(body)
    if document is not None:
        name = document.get("signature_name", DEFAULT_SIGNATURE)
        if isinstance(name, str):
            name = name or DEFAULT_SIGNATURE
            signatures = lookup(name)
            signature = signatures.get(name)
            try:
                parsed = numeric_json.predict_feeds(
                    body, document, signature, budget
                )
                if parsed is None:
                    numeric_json.check_rows(document, signature, budget)
            finally:
                del document  # frees simdjson's parser before anything else
            if parsed is not None:
                return parsed
    request = parse_json(body)
    if signatures is None:  # looked up once per request
        signatures = lookup(signature_name_of(request))
    return parse_predict(signatures, request, budget)


def _check_rows(signature, raw, budget, row_format):
    """Counts the rows of JSON values against `budget` (cheap: lengths
    of lists, before any conversion)."""
    if budget is None:
        return
    for name, value in raw.items():
        batched = is_batched(signature.inputs.get(name))
        if isinstance(value, list) and (row_format or batched):
            budget.check_rows(name, len(value))


def _parse_predict(signatures, request, budget=None):
    signature = find_signature(signatures, request)
    has_rows, has_columns = "instances" in request, "inputs" in request
    if has_rows and has_columns:
        raise BadRequest(
            "The request must contain either 'instances' or 'inputs', not both."
        )
    if not has_rows and not has_columns:
        raise BadRequest(
            "Missing 'instances' (row format) or 'inputs' (columnar "
            "format) in the request."
        )
    if has_rows:
        instances = request["instances"]
        if budget is not None and isinstance(instances, list):
            budget.check_rows("instances", len(instances))
        raw = _rows_to_columns(signature, instances)
    else:
        raw = _columns(signature, request["inputs"])
    _check_rows(signature, raw, budget, has_rows)
    feeds = {
        name: to_array(name, value, signature.inputs[name])
        for name, value in raw.items()
    }
    if has_rows:
        sizes = {len(a) for a in feeds.values()}
        if len(sizes) > 1:
            raise BadRequest(
                "All inputs of an instance must be present; received "
                "different counts per input."
            )
    return signature, feeds, has_rows


def _is_named(value, names):
    """True for `{"input": value}`, false for a `{"b64": ...}` value."""
    return isinstance(value, dict) and not is_b64(value) and bool(value)


def _rows_to_columns(signature, instances):
    names = list(signature.inputs)
    if not isinstance(instances, list):
        raise BadRequest(
            "'instances' must be a list with one entry per example; "
            f"received {type(instances).__name__}."
        )
    if not instances:
        raise BadRequest("'instances' is empty; send at least one example.")
    if not names:
        raise BadRequest(
            f"Signature {signature.name!r} takes no inputs; call it with "
            '{"inputs": {}} (columnar format).'
        )
    named = [_is_named(row, names) for row in instances]
    if len(names) == 1 and not any(named):
        return {names[0]: instances}
    if not all(named):
        raise BadRequest(
            f"Signature {signature.name!r} has inputs {names}: each "
            "instance must be an object keyed by input name."
        )
    columns = {n: [] for n in names}
    for i, row in enumerate(instances):
        check_keys(signature, row, f"instance {i}")
        for n in names:
            columns[n].append(row[n])
    return columns


def _columns(signature, inputs):
    names = list(signature.inputs)
    if len(names) == 1 and not (
        _is_named(inputs, names) and set(inputs) == set(names)
    ):
        return {names[0]: inputs}
    if not isinstance(inputs, dict) or is_b64(inputs):
        raise BadRequest(
            f"Signature {signature.name!r} has inputs {names}: 'inputs' "
            "must be an object keyed by input name."
        )
    check_keys(signature, inputs, "'inputs'")
    return dict(inputs)


# === Answers ===


def to_json_value(array, name="", numpy_numbers=False):
    """A NumPy array as nested lists, the way TF Serving writes it.

    float32 values get their shortest form (`0.1`, not
    `0.10000000149011612`); strings are UTF-8 text, except outputs whose
    name ends in `_bytes`, which are `{"b64": ...}`. With
    `numpy_numbers`, a numeric array is returned as it is, for `dumps`
    to write straight from its memory (the same numbers, a tenth of the
    time of building lists).
    """
    array = np.asarray(array)
    if array.dtype.kind in "OSa":
        encode = _b64 if name.endswith(BYTES_SUFFIX) else _text
        return _map_leaves(array.tolist(), encode)
    if numpy_numbers and orjson is not None and _dumps_natively(array):
        return array if array.flags.c_contiguous else array.copy()
    if array.dtype == np.float32 or array.dtype == np.float16:
        # numpy's float32 -> str is the shortest round-tripping form.
        return array.astype(str).astype(np.float64).tolist()
    return array.tolist()


def _dumps_natively(array):
    """True for arrays orjson writes itself, float32 in its shortest form
    (float16 it would widen, so those stay lists)."""
    if array.ndim < 1:
        return False
    return array.dtype.kind in "biu" or array.dtype in (np.float32, np.float64)


def _map_leaves(value, fn):
    if isinstance(value, list):
        return [_map_leaves(v, fn) for v in value]
    return fn(value)


def _b64(value):
    if isinstance(value, str):
        value = value.encode("utf-8")
    return {"b64": base64.b64encode(value).decode("ascii")}


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def format_predict(outputs, row_format, numpy_numbers=False):
    """`{"predictions": [...]}` (rows) or `{"outputs": ...}` (columns).

    With `numpy_numbers`, numeric values stay NumPy arrays and scalars
    (see `to_json_value`): the answer is then only for `dumps`.
    """
    names = list(outputs)

    def value(name, array):
        return to_json_value(array, name, numpy_numbers)

    if not row_format:
        if len(names) == 1:
            return {"outputs": value(names[0], outputs[names[0]])}
        return {"outputs": {n: value(n, a) for n, a in outputs.items()}}
    sizes = {a.shape[0] if a.ndim else None for a in outputs.values()}
    if len(sizes) != 1 or None in sizes:
        raise BadRequest(
            "The outputs do not share a batch dimension, so they cannot be "
            "returned as rows; send the request in columnar format "
            '({"inputs": ...}).'
        )
    if len(names) == 1:
        return {"predictions": value(names[0], outputs[names[0]])}
    columns = {n: value(n, a) for n, a in outputs.items()}
    rows = [{n: columns[n][i] for n in names} for i in range(sizes.pop())]
    return {"predictions": rows}


# === Classify and Regress: examples in, results out ===

_KIND_NAMES = {
    "int64_list": "int64",
    "float_list": "float",
    "bytes_list": "bytes",
}


def _kind_and_value(name, value):
    if isinstance(value, bool):
        return "int64_list", int(value)
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise BadRequest(
                f"Feature: {name} has uint64 element. Only int64 is supported."
            )
        return "int64_list", value
    if isinstance(value, float):
        return "float_list", value
    if isinstance(value, str):
        return "bytes_list", value.encode("utf-8")
    if is_b64(value):
        try:
            data = base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, TypeError, ValueError) as e:
            raise BadRequest(
                f"Feature: {name} has an invalid 'b64' value ({e})."
            ) from None
        return "bytes_list", data
    kind = "null" if value is None else type(value).__name__
    raise BadRequest(
        f"Feature: {name} has element with unexpected JSON type: {kind}"
    )


def feature_from_json(name, value):
    """One `tf.train.Feature` from a JSON value or a flat list of them."""

    values = value if isinstance(value, list) else [value]
    feature = tf.train.Feature()
    kind = None
    for item in values:
        item_kind, item_value = _kind_and_value(name, item)
        if kind is not None and item_kind != kind:
            raise BadRequest(
                f"Unexpected element type in feature: {name} expecting "
                f"type: {_KIND_NAMES[kind]}"
            )
        kind = item_kind
        getattr(feature, kind).value.append(item_value)
    return feature


def example_from_json(value):
    """A `tf.train.Example` from `{"feature": value or [values], ...}`."""

    if not isinstance(value, dict):
        kind = "array" if isinstance(value, list) else type(value).__name__
        raise BadRequest(f"Example must be JSON object but got JSON {kind}")
    example = tf.train.Example()
    for name, content in value.items():
        example.features.feature[name].CopyFrom(
            feature_from_json(name, content)
        )
    return example


def examples_from_json(request, method):
    """Serialized examples of a REST `:classify` / `:regress` body.

    Args:
        request: the parsed JSON object (`examples`, optional `context`).
        method: "classify" or "regress", for the error text.
    """
    context = None
    if "context" in request:
        context = example_from_json(request["context"])
    if "examples" not in request:
        raise BadRequest(
            f"When method is {method}, key 'examples' is expected and was "
            "not found"
        )
    examples = request["examples"]
    if not isinstance(examples, list):
        raise BadRequest("Expecting 'examples' value to be an list/array")
    if not examples:
        raise BadRequest("'examples' value is an empty array")
    return inference.serialize(
        [example_from_json(e) for e in examples], context=context
    )


def _shortest(value):
    """A float32 result as its shortest decimal (`3.0`, `0.1`)."""
    return float(str(np.float32(value)))


def classify_json(results):
    """TF Serving's `{"results": [[[label, score], ...], ...]}`."""
    return {
        "results": [
            [[label, _shortest(score)] for label, score in row]
            for row in results
        ]
    }


def regress_json(values):
    """TF Serving's `{"results": [value, ...]}`."""
    return {"results": [_shortest(v) for v in values]}
