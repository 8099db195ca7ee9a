"""Probing a Keras model: its layers with spatial feature maps, and a copy
that returns one layer's output (and the input of the softmax layer)
beside the model's own output.

Grad-CAM needs both (`kerascnn.visualize.explain_methods`), in Python and
inside an exported SavedModel (`kerascnn.export.saved_model`'s
`feature_map_gradients` signature, which the model server explains
through); `feature_map_gradients` is the one graph-safe computation both
use.

The feature-map layer defaults to the last spatial feature map (4-D
output, more than one position, not a pooling or preprocessing layer),
found also inside a nested base model (a fine-tuned classifier around a
backbone). The probe is a copy of the graph that shares the original
layers and reaches into the nested model through `clone_model`'s
`call_function`, so there is no "graph disconnected" error.
"""

import keras
import tensorflow as tf

from kerascnn.errors import InvalidArgumentError, KerasCNNError

PATH_SEPARATOR = "/"
_NOT_FEATURE_MAPS = ("Pooling", "InputLayer", "Dropout")


def _is_model(layer):

    return isinstance(layer, keras.Model) and hasattr(layer, "layers")


def _spatial_shape(layer):
    try:
        shape = tuple(layer.output.shape)
    except (AttributeError, ValueError):
        return None
    return shape[1:3] if len(shape) == 4 else None


def _is_feature_map(layer):
    """A 4-D output with more than one position, from a layer that computes
    features (not input, pooling, dropout or preprocessing)."""
    shape = _spatial_shape(layer)
    name = type(layer).__name__
    return (
        shape is not None
        and None not in shape
        and shape[0] * shape[1] > 1
        and not any(word in name for word in _NOT_FEATURE_MAPS)
        and "preprocessing" not in type(layer).__module__
    )


def feature_map_layers(model, _prefix=()):
    """Paths (tuples of names) of every layer with feature maps, nested
    models included, in the graph's order."""
    paths = []
    for layer in model.layers:
        if _is_model(layer):
            paths += feature_map_layers(layer, _prefix + (layer.name,))
        elif _is_feature_map(layer):
            paths.append(_prefix + (layer.name,))
    return paths


def default_layer(model):
    """The last spatial feature map before the pooling: a path tuple."""
    paths = feature_map_layers(model)
    if not paths:
        raise KerasCNNError(
            f"{model.name!r} has no layer with spatial feature maps, so "
            "Grad-CAM has nothing to weight; use "
            "method='integrated-gradients' or 'smoothgrad'."
        )
    return paths[-1]


def resolve_layer(model, layer):
    """The path of `layer`: a name (searched in nested models too) or an
    `outer/inner` path. Raises one line listing the choices."""
    paths = feature_map_layers(model)
    joined = {PATH_SEPARATOR.join(p): p for p in paths}
    wanted = str(layer)
    if wanted in joined:
        return joined[wanted]
    matches = [p for p in paths if p[-1] == wanted]
    if len(matches) == 1:
        return matches[0]
    why = "is ambiguous" if matches else "is not a layer with feature maps"
    raise InvalidArgumentError(
        f"Layer {wanted!r} of {model.name!r} {why}; layers with feature "
        f"maps: {', '.join(joined)}. Received: layer={layer!r}"
    )


def output_layer(model):
    """The layer whose call made the model's (single) output, or `None`.

    Read from the output tensor's history, because a layer shared by two
    graphs (a fine-tuned head reused around a nested base) has no single
    `.output`.
    """
    try:
        (output,) = model.outputs
        layer = output._keras_history.operation
    except (AttributeError, ValueError, TypeError):
        return None
    return layer if layer in model.layers else None


def logits_of(layer):
    """`(inputs) -> logits` for a softmax output layer, else `None`."""

    if isinstance(layer, keras.layers.Activation):
        if layer.activation is keras.activations.softmax:
            return lambda features: features
    if isinstance(layer, keras.layers.Dense):
        if layer.activation is keras.activations.softmax:

            def logits(features):
                z = keras.ops.matmul(features, layer.kernel)
                return z + layer.bias if layer.use_bias else z

            return logits
    return None


def _rebuild(model, call):
    """A Functional model sharing `model`'s layers, each call made through
    `call(layer, *args, **kwargs)`."""

    if isinstance(model, keras.Sequential):
        inputs = keras.Input(batch_shape=model.inputs[0].shape)
        x = inputs
        for layer in model.layers:
            x = call(layer, x)
        return keras.Model(inputs, x)
    return keras.models.clone_model(
        model, clone_function=lambda layer: layer, call_function=call
    )


def probe(model, path, last=None):
    """`keras.Model(x -> [feature map at path, input of layer last,
    output])` sharing the weights of `model`; the output stands in for
    what is not asked for (no path, no last)."""

    target = model.get_layer(path[0]) if path else None
    seen = {}

    def call(layer, *args, **kwargs):
        if layer is target and len(path) > 1:
            feature_map, out = probe(layer, path[1:])(*args, **kwargs)[::2]
        else:
            out = layer(*args, **kwargs)
            feature_map = out
        if layer is target:
            seen["map"] = feature_map
        if layer is last:
            seen["features"] = args[0]
        return out

    copy = _rebuild(model, call)
    output = copy.outputs[0]
    return keras.Model(
        copy.inputs[0],
        [seen.get("map", output), seen.get("features", output), output],
    )


def scored_probe(model, path):
    """`(probe, logits)`: `probe` of the feature map at `path` (`()`: none)
    that also returns the softmax layer's input, and `logits_of` that
    layer (`None` when the model does not end in a softmax: the
    probabilities are the scores)."""
    last = output_layer(model)
    logits = logits_of(last) if last is not None else None
    return probe(model, path, last if logits else None), logits


def feature_map_gradients(probe, logits, images, class_index):
    """Graph-safe Grad-CAM inputs of a batch.

    Args:
        probe: `probe(model, path, last)`'s model.
        logits: `logits_of(last)` (class scores from the softmax layer's
            input), or `None` to differentiate the probabilities.
        images: float model inputs `(N, H, W, C)`.
        class_index: int32 `(N,)`; `-1` explains the predicted class.

    Returns:
        `(feature map, gradient of each row's class score w.r.t. it,
        probabilities, the class explained per row)`.
    """
    with tf.GradientTape() as tape:
        feature_map, features, probs = probe(images, training=False)
        scores = tf.cast(
            logits(features) if logits is not None else probs, tf.float32
        )
        predicted = tf.argmax(scores, axis=1, output_type=tf.int32)
        classes = tf.where(class_index < 0, predicted, class_index)
        chosen = tf.gather(scores, classes, axis=1, batch_dims=1)
    grads = tape.gradient(chosen, feature_map)
    if grads is None:
        grads = tf.zeros_like(feature_map)
    return feature_map, grads, tf.cast(probs, tf.float32), classes
