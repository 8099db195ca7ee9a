"""TF Serving's Classify and Regress: `tf.Example`s in, classes or values out.

    serialized = examples_from_json(request)          # REST body
    serialized = examples_from_input(request.input)   # gRPC `Input` proto
    signature = check_signature(loaded, key, CLASSIFY_METHOD)
    classes = classifications(outputs, len(serialized))
    values = regressions(outputs, len(serialized))

Rules are TF Serving's (classifier.cc, regressor.cc, json_tensor.cc):
the signature's `method_name` must be the API's; its one input is
`inputs`, fed a 1-D string tensor of serialized `tf.Example`s (an
`ExampleListWithContext`'s context is merged into every example, the
example's own features winning); a classification has `classes`
(strings) and/or `scores` (floats) of shape `[examples, classes]`; a
regression has `outputs` of shape `[examples]` or `[examples, 1]`.
In JSON, an integer or a bool is an `int64_list` value, a number with a
fraction or an exponent a `float_list` value, a string or `{"b64": ...}`
a `bytes_list` value; a feature's values must share one kind.
"""

import base64
import binascii

import numpy as np

from kerascnn.serving.arrays import is_b64
from kerascnn.serving.errors import BadRequest

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
METHODS = {
    "predict": PREDICT_METHOD,
    "classify": CLASSIFY_METHOD,
    "regress": REGRESS_METHOD,
}
INPUTS = "inputs"
CLASSES = "classes"
SCORES = "scores"
OUTPUTS = "outputs"
_KIND_NAMES = {
    "int64_list": "int64",
    "float_list": "float",
    "bytes_list": "bytes",
}


# === Examples from JSON (REST) ===


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
    import tensorflow as tf

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
    import tensorflow as tf

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
    return serialize([example_from_json(e) for e in examples], context=context)


def serialize(examples, context=None):
    """Serialized examples; a context's bytes go first, so that protobuf's
    merge lets each example's own features win, as in TF Serving."""
    prefix = context.SerializeToString() if context is not None else b""
    return [prefix + e.SerializeToString() for e in examples]


# === Examples from the gRPC `Input` proto ===


def examples_from_input(input_proto):
    """Serialized examples of a gRPC `tensorflow.serving.Input`."""
    which = input_proto.WhichOneof("kind")
    if which == "example_list":
        serialized = serialize(input_proto.example_list.examples)
    elif which == "example_list_with_context":
        lists = input_proto.example_list_with_context
        serialized = serialize(lists.examples, context=lists.context)
    else:
        serialized = []
    if not serialized:
        raise BadRequest("Input is empty.")
    return serialized


# === Signatures and results ===


def check_signature(loaded, key, method):
    """The `Signature` for a Classify/Regress call, checked like TF Serving.

    Raises:
        BadRequest: an unknown key, another method name, or an input that
            is not one string tensor named `inputs`.
    """
    if key not in loaded.signatures:
        raise BadRequest(
            f'No signature was found with the name: "{_cut(key)}". Available '
            f"signatures: {', '.join(sorted(loaded.signatures))}."
        )
    expected = METHODS[method]
    actual = loaded.method_name(key)
    if actual != expected:
        kind = "classification" if method == "classify" else "regression"
        raise BadRequest(
            f"Expected {kind} signature method_name to be {expected}. "
            f"Was: {actual}"
        )
    signature = loaded.signatures[key]
    if list(signature.inputs) != [INPUTS]:
        raise BadRequest(
            f"Signature {key!r} must have one input named {INPUTS!r} "
            f"(serialized tf.Examples); it has {list(signature.inputs)}."
        )
    dtype = signature.inputs[INPUTS].dtype
    if dtype.name != "string":
        raise BadRequest(
            f"Input {INPUTS!r} of signature {key!r} is {dtype.name}, not "
            "string: it cannot take serialized tf.Examples (send a "
            "PredictRequest instead)."
        )
    return signature


def examples_feed(serialized):
    """The `inputs` feed: a 1-D object array of serialized examples."""
    array = np.empty(len(serialized), dtype=object)
    array[:] = serialized
    return {INPUTS: array}


def _batch_output(outputs, name, count, dtype_kind, rank_ok):
    array = outputs[name]
    if array.dtype.kind not in dtype_kind:
        raise BadRequest(
            f"Expected output {name!r} to be "
            f"{'string' if 'O' in dtype_kind else 'float'}; it is "
            f"{array.dtype.name}."
        )
    if not rank_ok(array.shape) or array.shape[0] != count:
        raise BadRequest(
            f"Expected output {name!r} of shape [{count}, ...] for {count} "
            f"examples; received {list(array.shape)}."
        )
    return array


def classifications(outputs, count):
    """`[[(label, score), ...] per example]` from `classes` / `scores`."""
    if CLASSES not in outputs and SCORES not in outputs:
        raise BadRequest(
            "Expected classification signature outputs to contain at "
            f"least one of {CLASSES!r} or {SCORES!r}."
        )
    rank2 = lambda shape: len(shape) == 2  # noqa: E731
    classes = scores = None
    if CLASSES in outputs:
        classes = _batch_output(outputs, CLASSES, count, "OSU", rank2)
    if SCORES in outputs:
        scores = _batch_output(outputs, SCORES, count, "f", rank2)
    if classes is not None and scores is not None:
        if classes.shape != scores.shape:
            raise BadRequest(
                f"Tensors {CLASSES!r} and {SCORES!r} must have the same "
                f"shape; received {list(classes.shape)} and "
                f"{list(scores.shape)}."
            )
    width = (classes if classes is not None else scores).shape[1]
    results = []
    for i in range(count):
        row = []
        for j in range(width):
            label = "" if classes is None else _text(classes[i, j])
            score = 0.0 if scores is None else float(scores[i, j])
            row.append((label, score))
        results.append(row)
    return results


def regressions(outputs, count):
    """One float per example from `outputs` (`[N]` or `[N, 1]`)."""
    if OUTPUTS not in outputs:
        raise BadRequest(
            f"Expected regression signature outputs to contain {OUTPUTS!r}."
        )
    values = _batch_output(
        outputs,
        OUTPUTS,
        count,
        "f",
        lambda shape: len(shape) == 1 or (len(shape) == 2 and shape[1] == 1),
    )
    return [float(v) for v in values.reshape(count)]


def _cut(text, limit=100):
    """A client's text cut short for an error message."""
    return text if len(text) <= limit else text[:limit] + "..."


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


# === Answers ===


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


def fill_classification(result_proto, results):
    """Fills a `ClassificationResult` proto."""
    for row in results:
        classifications = result_proto.classifications.add()
        for label, score in row:
            entry = classifications.classes.add()
            entry.label = label
            entry.score = score


def fill_regression(result_proto, values):
    """Fills a `RegressionResult` proto."""
    for value in values:
        result_proto.regressions.add().value = value
