"""Calling a served signature: the default name, the unknown-name error,
and the model call itself (NumPy arrays in, NumPy arrays out).

No wire format here: the REST codec (`handlers`), the gRPC services, the
warm-up replay (`loading`) and the batcher all end in `run_signature`.
"""

import re

import numpy as np
import tensorflow as tf

from kerascnn.serving.arrays import shape_mismatch
from kerascnn.serving.errors import BadRequest

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"


def short(text, limit=100):
    """`text` cut to `limit` characters, for error messages: a client's
    100 KB name is not echoed back."""
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "..."


def unknown_signature(name, signatures):
    """TF Serving's 400 for a signature name the model does not have."""
    return BadRequest(
        f"Serving signature name: {short(name)!r} not found in signature "
        f"def. Available signatures: {', '.join(sorted(signatures))}."
    )


def run_signature(signature, feeds):
    """Calls the signature; returns `{output name: np.ndarray}`.

    Callers check shapes first (`LoadedVersion.check_shapes`). What
    TensorFlow refuses (a TF1 graph fed a shape it cannot run, an
    undecodable image) is the client's fault and becomes `BadRequest`,
    naming the input whose shape does not fit the signature when there
    is one, and TF's first line.
    """

    try:
        tensors = {
            n: tf.constant(a, dtype=signature.inputs[n].dtype)
            for n, a in feeds.items()
        }
        outputs = signature.fn(**tensors)
    except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
        message = getattr(e, "message", None) or str(e)
        # TF prefixes "{{function_node ...}}" and appends "[[{{node ...}}]]".
        text = re.sub(r"\{\{[^}]*\}\}\s*", "", message).strip()
        first = text.splitlines()[0] if text else type(e).__name__
        mismatches = [
            shape_mismatch(n, np.shape(a), signature.inputs[n].shape)
            for n, a in feeds.items()
            if n in signature.inputs
        ]
        mismatches = [m for m in mismatches if m]
        if mismatches:
            raise BadRequest(
                f"{mismatches[0]}; TensorFlow cannot run it: {first}"
            ) from None
        raise BadRequest(
            f"Signature {signature.name!r} rejected the input: {first}"
        ) from None
    return {n: np.asarray(t) for n, t in sorted(outputs.items())}
