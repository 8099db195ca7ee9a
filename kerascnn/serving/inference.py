"""TF Serving's Classify and Regress: `tf.Example`s in, classes or values out.

    signature = check_signature(loaded, key, "classify")
    feeds = examples_feed(serialized)
    classes = classifications(outputs, len(serialized))
    values = regressions(outputs, len(serialized))

No wire format here: the REST codec (`handlers.examples_from_json`) and
the gRPC service (`grpc_service.examples_from_input`) turn their requests
into serialized examples (`serialize`), and write these Python results
back in their own dialect.

Rules are TF Serving's (classifier.cc, regressor.cc): the signature's
`method_name` must be the API's; its one input is `inputs`, fed a 1-D
string tensor of serialized `tf.Example`s (a context is merged into
every example, the example's own features winning); a classification
has `classes` (strings) and/or `scores` (floats) of shape `[examples,
classes]`; a regression has `outputs` of shape `[examples]` or
`[examples, 1]`.
"""

import numpy as np

from kerascnn.serving.errors import BadRequest
from kerascnn.serving.signatures import PREDICT_METHOD

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


def serialize(examples, context=None):
    """Serialized examples; a context's bytes go first, so that protobuf's
    merge lets each example's own features win, as in TF Serving."""
    prefix = context.SerializeToString() if context is not None else b""
    return [prefix + e.SerializeToString() for e in examples]


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
