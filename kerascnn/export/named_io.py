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

Other tasks name their own (the slot tagger: `token_ids` in,
`tag_probabilities`, `tag_ids`, ... out; see
`kerascnn.tasks.sequence_tagging.export`).

The batch axis (and the tagger's length axis) stays free. A model
trained in mixed precision is exported as its float32 twin
(`float32_model`): ONNX Runtime has no bfloat16 convolutions, and the
1e-4 check compares against Keras at float32.

What differs per task (the input spec, the outputs) is the task's
(`Task.named_input_spec`, `Task.named_outputs`); this module holds the
wrapper and the image classifier's pieces, the default.
"""

import dataclasses

from kerascnn.lazy import LazyModule

keras = LazyModule("keras")
tf = LazyModule("tensorflow")


def image_input_spec(model):
    """`images`: float32 `(batch, H, W, C)`, the Keras input."""

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

    config = keras.saving.serialize_keras_object(model)
    return all(name == "float32" for name in _policy_names(config))


def float32_model(model):
    """`model` itself, or a float32 copy of a mixed-precision model.

    Variables are float32 under mixed precision already, so the copy
    takes the same weights; only the compute dtype changes.
    """

    if is_float32(model):
        return model
    config = _float32_config(keras.saving.serialize_keras_object(model))
    copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy


def argmax_ids(probabilities):
    """Class ids as `tf.argmax`: `keras.ops.argmax` on TensorFlow lowers
    to `Bitcast`/`BitwiseAnd` (its -0.0 handling), which ONNX has no
    operator for."""

    return tf.argmax(probabilities, axis=-1, output_type=tf.int64)


def classifier_outputs(outputs):
    """`probabilities` float32 and `class_ids` int64."""

    probabilities = tf.cast(outputs, tf.float32)
    return {
        "probabilities": probabilities,
        "class_ids": argmax_ids(probabilities),
    }


@dataclasses.dataclass
class NamedModel:
    """What ONNX and OpenVINO convert: `model` (a Keras model: `spec`'s
    input -> dict of named outputs) and its input and output names."""

    model: object
    spec: object
    output_names: list

    def describe(self):
        """`{"inputs": [...], "outputs": [...]}` for metadata and docs."""
        return {"inputs": [self.spec.name], "outputs": self.output_names}


def wrap(model, task, meta):
    """The `NamedModel` of `model`: its task's named input
    (`Task.named_input_spec`) and outputs (`Task.named_outputs`)."""

    class NamedOutputs(keras.Model):
        def __init__(self, inner):
            super().__init__(name=f"{inner.name}_named_io")
            self.inner = inner

        def call(self, inputs):
            outputs = self.inner(inputs, training=False)
            return task.named_outputs(outputs, inputs, meta)

    wrapper = NamedOutputs(float32_model(model))
    spec = task.named_input_spec(model)
    # Build (exporters need a called model); length 2, as a softmax over
    # one token (the attention pool) warns.
    shape = [1] + [2 if d is None else d for d in spec.shape[1:]]
    outputs = wrapper(tf.zeros(shape, spec.dtype))
    return NamedModel(wrapper, spec, list(outputs))
