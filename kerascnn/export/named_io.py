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
    outputs `tag_probabilities` float32 `(batch, length, tags)`,
            `tag_ids` int64 `(batch, length)`: BIO-constrained Viterbi
            decoding in-graph, as the SavedModel's (0 at padding; tag
            names in the metadata) and, with an intent head,
            `intent_probabilities` float32 `(batch, intents)` and
            `intent_ids` int64 `(batch,)`.

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


def _policy_names(config):
    """Every dtype policy name in a serialized Keras object."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy":
            yield config.get("config", {}).get("name")
        for value in config.values():
            yield from _policy_names(value)
    elif isinstance(config, list):
        for value in config:
            yield from _policy_names(value)


def is_float32(model):
    """True when every layer (nested ones too) computes in float32."""
    import keras

    config = keras.saving.serialize_keras_object(model)
    return all(name == "float32" for name in _policy_names(config))


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


def wrap(model, is_tagger, tag_names=()):
    """A Keras model: `input_spec`'s input -> dict of named outputs.

    `tag_names` (the tagger's class names) choose the decoding of
    `tag_ids`: BIO-constrained Viterbi for IOB2 tags, else argmax.

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
            tag_probabilities = tf.cast(outputs["tags"], tf.float32)
            named = {
                "tag_probabilities": tag_probabilities,
                "tag_ids": _decode_tags(tag_probabilities, inputs, tag_names),
            }
            if "intent" in outputs:
                intent = tf.cast(outputs["intent"], tf.float32)
                named["intent_probabilities"] = intent
                named["intent_ids"] = argmax(intent)
            return named

    wrapper = NamedOutputs(float32_model(model))
    spec = input_spec(model, is_tagger)
    # Build (exporters need a called model); length 2, as a softmax over
    # one token (the attention pool) warns.
    shape = [1] + [2 if d is None else d for d in spec.shape[1:]]
    wrapper(tf.zeros(shape, spec.dtype))
    return wrapper


def _decode_tags(tag_probabilities, token_ids, tag_names):
    """The SavedModel's tag ids: constrained Viterbi, 0 at padding."""
    import tensorflow as tf

    from kerascnn.export import tagger_graph
    from kerascnn.tagging import allowed_transitions

    names = [str(n) for n in tag_names]
    mask = tf.not_equal(token_ids, 0)
    if not any(n.startswith("I-") for n in names):
        ids = tf.argmax(tag_probabilities, axis=-1, output_type=tf.int64)
        return tf.where(mask, ids, tf.zeros_like(ids))
    start, transitions = allowed_transitions(names)
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    return tagger_graph.constrained_decode(
        tag_probabilities, lengths, start, transitions
    )


def describe(is_tagger, has_intent=True):
    """`{"inputs": [...], "outputs": [...]}` names for metadata and docs."""
    if not is_tagger:
        return {
            "inputs": ["images"],
            "outputs": ["probabilities", "class_ids"],
        }
    outputs = ["tag_probabilities", "tag_ids"]
    if has_intent:
        outputs += ["intent_probabilities", "intent_ids"]
    return {"inputs": ["token_ids"], "outputs": outputs}
