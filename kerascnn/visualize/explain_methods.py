"""Why a model chose a class: Grad-CAM, Grad-CAM++, integrated gradients
and SmoothGrad, written on `tf.GradientTape`.

    gradcam               Selvaraju et al. 2017: the feature maps of one
                          layer weighted by the mean gradient of the class
                          score over each map, ReLU, upsampled.
    gradcam++             Chattopadhay et al. 2018: per-position weights
                          (second and third powers of the gradient, under
                          the paper's exponential-score closed form).
    integrated-gradients  Sundararajan et al. 2017: (x - baseline) times
                          the gradient averaged along the straight path
                          from the baseline (trapezoid rule, all steps in
                          batches); attributions sum to f(x) - f(baseline).
    smoothgrad            Smilkov et al. 2017: the input gradient averaged
                          over noisy copies of the image.

The class score is the logit when the model ends in a softmax (a `Dense`
with a softmax activation, or a softmax `Activation`), so saturated
probabilities do not flatten the gradients; otherwise the probability.

The Grad-CAM layer defaults to the last spatial feature map (4-D output,
more than one position, not a pooling or preprocessing layer), found also
inside a nested base model (a fine-tuned classifier around a backbone).
The gradient model is a copy of the graph that shares the original layers
and reaches into the nested model through `clone_model`'s
`call_function`, so there is no "graph disconnected" error.

Models without Keras layers (a SavedModel's serving signature, any
callable returning probabilities) are explained by the methods that need
only input gradients: integrated gradients and SmoothGrad.

tf-keras-vis, tf-explain and xplique were tried first: see the README's
Dependencies section for why none is used.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from kerascnn import validation as v
from kerascnn.errors import InvalidArgumentError, KerasCNNError

METHODS = ("gradcam", "gradcam++", "integrated-gradients", "smoothgrad")
CAM_METHODS = ("gradcam", "gradcam++")
PATH_SEPARATOR = "/"
_NOT_FEATURE_MAPS = ("Pooling", "InputLayer", "Dropout")


@dataclasses.dataclass
class ExplainOptions:
    """How the gradient methods sample.

    Attributes:
        steps: integrated gradients' path steps (`steps + 1` points,
            trapezoid rule). Defaults to `50`.
        samples: SmoothGrad's noisy copies. Defaults to `25`.
        noise: SmoothGrad's noise standard deviation as a fraction of each
            image's value range. Defaults to `0.15` (the paper's 10-20%).
        batch_size: images per forward/backward pass. Defaults to `64`.
        seed: SmoothGrad's noise seed. Defaults to `0`.
    """

    steps: int = 50
    samples: int = 25
    noise: float = 0.15
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self):
        v.check_positive_int("steps", self.steps)
        v.check_positive_int("samples", self.samples)
        v.check_positive_int("batch_size", self.batch_size)
        v.check_positive_int("seed", self.seed, minimum=0)
        self.noise = v.check_non_negative_number("noise", self.noise)


@dataclasses.dataclass
class Explanation:
    """Maps and what they explain, one row per image.

    Attributes:
        maps: `(N, H, W)` float32 in [0, 1] (each map divided by its
            maximum; all zeros when nothing supports the class).
        class_index: `(N,)` the explained class of each image.
        probabilities: `(N, classes)` the model's output.
        method: one of `METHODS`.
        layer: the Grad-CAM layer as `outer/inner` path, else `None`.
        score: `"logit"` or `"probability"`: what was differentiated.
    """

    maps: np.ndarray
    class_index: np.ndarray
    probabilities: np.ndarray
    method: str
    layer: str = None
    score: str = "probability"


# === Layers ===


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


# === The gradient model ===


def _output_layer(model):
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


def _logits_of(layer):
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


def _traced(model, path, last=None):
    """`keras.Model(x -> [feature map at path, input of layer last,
    output])` sharing the weights of `model`; the output stands in for
    what is not asked for (no path, no last)."""

    target = model.get_layer(path[0]) if path else None
    seen = {}

    def call(layer, *args, **kwargs):
        if layer is target and len(path) > 1:
            feature_map, out = _traced(layer, path[1:])(*args, **kwargs)[::2]
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


class Explainer:
    """One model's gradient model, built once and reused for many images.

    Args:
        model: a Keras image classifier `(N, H, W, C) -> probabilities`,
            or any callable doing the same (a SavedModel signature); a
            callable supports integrated gradients and SmoothGrad only.
        layer: the Grad-CAM layer (name or `outer/inner` path). Defaults
            to `default_layer(model)`.
    """

    def __init__(self, model, layer=None):

        self.model = model
        self.is_keras = isinstance(model, keras.Model)
        self.layer = None
        if not self.is_keras:
            if layer is not None:
                raise self._needs_keras("A Grad-CAM layer")
            self._score = None
            self._run = self._callable_outputs
            return
        path = resolve_layer(model, layer) if layer else _maybe_default(model)
        self.layer = PATH_SEPARATOR.join(path) if path else None
        last = _output_layer(model)
        self._score = _logits_of(last) if last is not None else None
        probe = _traced(model, path or (), last if self._score else None)
        self._run = lambda x: probe(x, training=False)

    @property
    def score(self):
        return "logit" if self._score else "probability"

    def _needs_keras(self, what):
        return KerasCNNError(
            f"{what} needs the Keras model's internal layers, and "
            f"{type(self.model).__name__} exposes only its outputs; explain "
            "the run directory or .keras file, or use "
            "method='integrated-gradients' or 'smoothgrad'."
        )

    def _callable_outputs(self, x):
        probs = self.model(x)
        if isinstance(probs, dict):  # a signature's named outputs
            probs = probs.get("probabilities", next(iter(probs.values())))
        return probs, probs, probs

    def _outputs(self, x):
        """`(feature map, class scores, probabilities)` for a batch."""
        feature_map, features, probs = self._run(x)
        scores = self._score(features) if self._score else probs
        return feature_map, scores, probs

    # --- gradients ---

    def _gradients(self, x, classes, wrt_map=False):
        """`(gradient, feature map, scores of classes, probabilities)`:
        the gradient of each row's class score w.r.t. its input (or its
        feature map with `wrt_map`)."""

        x = tf.convert_to_tensor(x, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x)
            feature_map, scores, probs = self._outputs(x)
            chosen = tf.gather(
                tf.cast(scores, tf.float32), classes, axis=1, batch_dims=1
            )
        target = feature_map if wrt_map else x
        grads = tape.gradient(chosen, target)
        if grads is None:
            grads = tf.zeros_like(target)
        return grads, feature_map, chosen, probs

    def _batched_input_gradients(self, x, classes, batch_size):
        """Input gradients and scores of many rows, `batch_size` at once."""
        grads, scores = [], []
        for start in range(0, len(x), batch_size):
            stop = start + batch_size
            g, _, s, _ = self._gradients(x[start:stop], classes[start:stop])
            grads.append(np.asarray(g))
            scores.append(np.asarray(s))
        return np.concatenate(grads), np.concatenate(scores)

    def cam(self, images, classes, plus=False):
        """Grad-CAM (or ++) at the feature map's resolution, `(N, h, w)`."""
        if self.layer is None:
            raise self._needs_keras("Grad-CAM")
        grads, maps, _, _ = self._gradients(images, classes, wrt_map=True)
        grads = np.asarray(grads, np.float64)
        maps = np.asarray(maps, np.float64)
        if plus:
            weights = _gradcam_plus_plus_weights(grads, maps)
        else:
            weights = grads.mean(axis=(1, 2))
        return np.maximum(np.einsum("nhwc,nc->nhw", maps, weights), 0.0)

    def integrated_gradients(self, images, classes, baseline=None, **kw):
        """`(attributions (N, H, W, C), f(x), f(baseline))` per image."""
        options = _options(kw)
        images = np.asarray(images, np.float32)
        base = np.broadcast_to(
            np.zeros_like(images) if baseline is None else baseline,
            images.shape,
        ).astype(np.float32)
        alphas = np.linspace(0.0, 1.0, options.steps + 1, dtype=np.float32)
        # Trapezoid rule: half weight at both ends.
        weights = np.full(alphas.shape, 1.0 / options.steps, np.float32)
        weights[[0, -1]] /= 2
        attributions, at_x, at_base = [], [], []
        for image, start, c in zip(images, base, classes):
            path = start + alphas[:, None, None, None] * (image - start)
            repeat = np.full(len(alphas), c)
            grads, scores = self._batched_input_gradients(
                path, repeat, options.batch_size
            )
            mean_grad = np.tensordot(weights, grads, axes=1)
            attributions.append((image - start) * mean_grad)
            at_base.append(scores[0])
            at_x.append(scores[-1])
        return np.stack(attributions), np.array(at_x), np.array(at_base)

    def smoothgrad(self, images, classes, **kw):
        """The mean input gradient over noisy copies, `(N, H, W, C)`."""
        options = _options(kw)
        rng = np.random.default_rng(options.seed)
        images = np.asarray(images, np.float32)
        out = []
        for image, c in zip(images, classes):
            sigma = options.noise * float(image.max() - image.min())
            noisy = image + rng.normal(
                0.0, sigma, (options.samples, *image.shape)
            ).astype(np.float32)
            grads, _ = self._batched_input_gradients(
                noisy, np.full(options.samples, c), options.batch_size
            )
            out.append(grads.mean(axis=0))
        return np.stack(out)

    # --- the one entry point ---

    def explain(self, images, method="gradcam", class_index=None, **kw):
        """An `Explanation` of `images` (model inputs, `(N, H, W, C)`)."""
        method = v.check_choice("method", method, METHODS)
        images = _check_images(images)
        probs = _probabilities(self._outputs(images)[2])
        classes = _classes(class_index, probs)
        baseline = kw.pop("baseline", None)
        if method in CAM_METHODS:
            small = self.cam(images, classes, plus=method == "gradcam++")
            maps = _upsample(small, images.shape[1:3])
        elif method == "integrated-gradients":
            ig = self.integrated_gradients(images, classes, baseline, **kw)[0]
            maps = np.maximum(ig.sum(axis=-1), 0.0)
        else:
            maps = np.abs(self.smoothgrad(images, classes, **kw)).max(-1)
        return Explanation(
            maps=_normalize(maps),
            class_index=classes,
            probabilities=probs,
            method=method,
            layer=self.layer if method in CAM_METHODS else None,
            score=self.score,
        )


def _options(kw):
    known = [f.name for f in dataclasses.fields(ExplainOptions)]
    unknown = sorted(set(kw) - set(known))
    if unknown:
        raise InvalidArgumentError(
            f"Unknown explain option(s) {', '.join(unknown)}; known: "
            f"baseline, {', '.join(known)}."
        )
    return ExplainOptions(**kw)


def _maybe_default(model):
    try:
        return default_layer(model)
    except KerasCNNError:
        return None  # integrated gradients and SmoothGrad still work


def _gradcam_plus_plus_weights(grads, maps):
    """Grad-CAM++ channel weights `(N, C)` (the paper's eq. 19 with an
    exponential score, where higher derivatives are powers of the first)."""
    g2, g3 = grads**2, grads**3
    denominator = 2 * g2 + (maps * g3).sum(axis=(1, 2), keepdims=True)
    safe = np.where(denominator != 0, denominator, 1.0)
    alpha = np.where(denominator != 0, g2 / safe, 0.0)
    return (alpha * np.maximum(grads, 0.0)).sum(axis=(1, 2))


def _probabilities(output):

    if isinstance(output, dict):
        output = output.get("probabilities", next(iter(output.values())))
    return np.asarray(keras.ops.convert_to_numpy(output), np.float32)


def _check_images(images):
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[0] == 0:
        raise InvalidArgumentError(
            "`images` must be a batch of model inputs (N, H, W, C) with "
            f"N >= 1. Received: images with shape {images.shape}"
        )
    return images


def _classes(class_index, probs):
    """One class per row: the prediction, one index, or one per row."""
    n, classes = probs.shape
    if class_index is None:
        return probs.argmax(axis=1)
    chosen = np.asarray(class_index)
    if chosen.ndim == 0:
        chosen = np.full(n, chosen)
    if (
        chosen.shape != (n,)
        or not np.issubdtype(chosen.dtype, np.integer)
        or ((chosen < 0) | (chosen >= classes)).any()
    ):
        raise InvalidArgumentError(
            f"`class_index` must be a class index in [0, {classes}) or one "
            f"per image. Received: class_index={class_index!r}"
        )
    return chosen.astype(np.int64)


def _upsample(maps, size):

    resized = tf.image.resize(maps[..., None], size, method="bilinear")
    return np.asarray(resized)[..., 0]


def _normalize(maps):
    maps = np.asarray(maps, np.float32)
    peak = maps.reshape(len(maps), -1).max(axis=1)
    peak = np.where(peak > 0, peak, 1.0)
    return maps / peak[:, None, None]


def explain(
    model, images, method="gradcam", class_index=None, layer=None, **options
):
    """Heat maps of why `model` gave each image its class.

    Args:
        model: a Keras image classifier (nested base models included) or
            a callable `(N, H, W, C) -> probabilities`, such as a
            SavedModel's serving signature (integrated gradients and
            SmoothGrad only).
        images: model inputs `(N, H, W, C)`, preprocessed as in training.
        method: one of `"gradcam"`, `"gradcam++"`,
            `"integrated-gradients"`, `"smoothgrad"`. Defaults to
            `"gradcam"`.
        class_index: the class to explain: `None` (each image's predicted
            class), one index, or one per image.
        layer: the Grad-CAM layer name or `outer/inner` path. Defaults to
            the last spatial feature map.
        **options: `baseline` (integrated gradients' start, model-input
            space, zeros by default) and the fields of `ExplainOptions`.

    Returns:
        `(N, H, W)` float32 maps in [0, 1], one per image.

    Example:

    >>> maps = explain(model, x_test[:4], method="integrated-gradients")
    """
    return (
        Explainer(model, layer)
        .explain(images, method, class_index, **options)
        .maps
    )
