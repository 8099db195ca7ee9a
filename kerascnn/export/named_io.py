"""The model ONNX and OpenVINO export: named inputs, named outputs.

Keras' exporters name tensors after the traced graph (`Identity:0`,
`image`). A caller of an `.onnx` file or an OpenVINO IR should see what
the SavedModel's `serving_default` shows, so both exporters convert a
thin Functional wrapper around the trained model:

Image classifiers
    input   `images`: float32 `(batch, H, W, C)`, normalized like the
            training data (the Keras input).
    outputs `probabilities` float32 `(batch, classes)`, `class_ids` int64
            `(batch,)`.

Slot tagger (token ids in; the text-in graph stays a SavedModel feature)
    input   `token_ids`: int32 `(batch, length)`, 0 = padding.
    outputs `tag_probabilities` float32 `(batch, length, tags)` and, with
            an intent head, `intent_probabilities` float32
            `(batch, intents)` and `intent_ids` int64 `(batch,)`. Tag
            strings come from BIO-constrained Viterbi decoding on the host
            (`kerascnn.tagging.decode_tags`).

The batch axis (and the tagger's length axis) stays free. A model
trained in mixed precision is exported as its float32 twin
(`float32_model`): ONNX Runtime has no bfloat16 convolutions, and the
1e-4 check compares against Keras at float32.
"""


def input_spec(model, is_tagger):
    """The named, batch-free `tf.TensorSpec` of the exported input."""
    import tensorflow as tf

    if is_tagger:
        return tf.TensorSpec((None, None), tf.int32, name="token_ids")
    shape = tuple(model.input_shape[1:])
    return tf.TensorSpec((None, *shape), tf.float32, name="images")


def _float32_config(config):
    """`config` with every mixed/low-precision dtype policy -> float32."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy":
            return {**config, "config": {"name": "float32"}}
        return {k: _float32_config(v) for k, v in config.items()}
    if isinstance(config, list):
        return [_float32_config(v) for v in config]
    return config


def is_float32(model):
    """True when every layer computes in float32."""
    return all(
        layer.dtype_policy.compute_dtype == "float32"
        for layer in model._flatten_layers(include_self=True)
    )


def float32_model(model):
    """`model` itself, or a float32 copy of a mixed-precision model.

    Variables are float32 under mixed precision already, so the copy
    takes the same weights; only the compute dtype changes.
    """
    import keras

    if is_float32(model):
        return model
    config = _float32_config(keras.saving.serialize_keras_object(model))
    copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy


def wrap(model, is_tagger):
    """A Keras model: `input_spec`'s input -> dict of named outputs.

    The class ids are `tf.argmax`: `keras.ops.argmax` on TensorFlow
    lowers to `Bitcast`/`BitwiseAnd` (its -0.0 handling), which ONNX
    has no operator for.
    """
    import keras
    import tensorflow as tf

    def argmax(probabilities):
        return tf.argmax(probabilities, axis=-1, output_type=tf.int64)

    class NamedOutputs(keras.Model):
        def __init__(self, inner):
            super().__init__(name=f"{inner.name}_named_io")
            self.inner = inner

        def call(self, inputs):
            outputs = self.inner(inputs, training=False)
            if not is_tagger:
                probabilities = tf.cast(outputs, tf.float32)
                return {
                    "probabilities": probabilities,
                    "class_ids": argmax(probabilities),
                }
            if not isinstance(outputs, dict):
                outputs = {"tags": outputs}
            named = {"tag_probabilities": tf.cast(outputs["tags"], tf.float32)}
            if "intent" in outputs:
                intent = tf.cast(outputs["intent"], tf.float32)
                named["intent_probabilities"] = intent
                named["intent_ids"] = argmax(intent)
            return named

    wrapper = NamedOutputs(float32_model(model))
    spec = input_spec(model, is_tagger)
    shape = [1 if d is None else d for d in spec.shape]
    wrapper(tf.zeros(shape, spec.dtype))  # build: exporters need a called model
    return wrapper


def describe(is_tagger, has_intent=True):
    """`{"inputs": [...], "outputs": [...]}` names for metadata and docs."""
    if not is_tagger:
        return {
            "inputs": ["images"],
            "outputs": ["probabilities", "class_ids"],
        }
    outputs = ["tag_probabilities"]
    if has_intent:
        outputs += ["intent_probabilities", "intent_ids"]
    return {"inputs": ["token_ids"], "outputs": outputs}
