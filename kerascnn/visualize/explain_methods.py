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

The Grad-CAM layer defaults to the last spatial feature map, found also
inside a nested base model; the gradient model is `kerascnn.models.probes`'
copy of the graph (no "graph disconnected" error).

Models without Keras layers (a SavedModel's serving signature, any
callable returning probabilities) are explained by the methods that need
only input gradients: integrated gradients and SmoothGrad. A SavedModel
exported by kerascnn also has the `feature_map_gradients` signature, from
which `cam_from` makes Grad-CAM and Grad-CAM++ (the model server does).

tf-keras-vis, tf-explain and xplique were tried first: see the README's
Dependencies section for why none is used.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from kerascnn import validation as v
from kerascnn.errors import InvalidArgumentError, KerasCNNError
from kerascnn.models.probes import (
    PATH_SEPARATOR,
    default_layer,
    feature_map_gradients,
    resolve_layer,
    scored_probe,
)

METHODS = ("gradcam", "gradcam++", "integrated-gradients", "smoothgrad")
CAM_METHODS = ("gradcam", "gradcam++")
# The SavedModel signature with Grad-CAM's inputs (kerascnn.export).
CAM_SIGNATURE = "feature_map_gradients"


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


class SignatureModel:
    """A SavedModel's signatures as a model to explain: `serving_default`
    as `(N, H, W, C) -> probabilities`, and Grad-CAM's inputs from its
    `feature_map_gradients` signature when it was exported with one.

    Args:
        loaded: `tf.saved_model.load`'s object.
    """

    def __init__(self, loaded):
        self.loaded = loaded  # keeps the signatures' variables alive
        self.signatures = loaded.signatures
        self._fn = self.signatures["serving_default"]
        self._key = next(iter(self._fn.structured_input_signature[1]))
        self.has_cam = CAM_SIGNATURE in self.signatures
        self.logit_score = None

    def __call__(self, x):
        return self._fn(**{self._key: x})["probabilities"]

    def cam_inputs(self, images, classes):
        """`(feature map, its gradients)` of each row's class."""
        out = self.signatures[CAM_SIGNATURE](images=images, class_index=classes)
        self.logit_score = bool(np.asarray(out["logit_score"]).all())
        return out["feature_map"], out["gradients"]


class Explainer:
    """One model's gradient model, built once and reused for many images.

    Args:
        model: a Keras image classifier `(N, H, W, C) -> probabilities`,
            or any callable doing the same; a callable supports integrated
            gradients and SmoothGrad, and a `SignatureModel` (a kerascnn
            SavedModel) Grad-CAM and Grad-CAM++ too, through its
            `feature_map_gradients` signature (the layer it was exported
            with: the default one).
        layer: the Grad-CAM layer (name or `outer/inner` path). Defaults
            to `default_layer(model)`.
    """

    def __init__(self, model, layer=None):

        self.model = model
        self.is_keras = isinstance(model, keras.Model)
        self.layer = None
        self._cam_inputs = None
        if not self.is_keras:
            if layer is not None and getattr(model, "has_cam", False):
                raise KerasCNNError(
                    "A SavedModel explains Grad-CAM at the layer it was "
                    "exported with (its last spatial feature map); another "
                    "layer needs the Keras model's layers: explain the run "
                    "directory or .keras file."
                )
            if layer is not None:
                raise self._needs_keras("A Grad-CAM layer")
            self._score = None
            self._run = self._callable_outputs
            if getattr(model, "has_cam", False):
                self.layer = CAM_SIGNATURE
                self._cam_inputs = model.cam_inputs
            return
        path = resolve_layer(model, layer) if layer else _maybe_default(model)
        self.layer = PATH_SEPARATOR.join(path) if path else None
        self._probe, self._score = scored_probe(model, path or ())
        self._run = lambda x: self._probe(x, training=False)

    @property
    def score(self):
        return "logit" if self._score else "probability"

    def _score_of(self, method):
        if method in CAM_METHODS and self._cam_inputs is not None:
            return "logit" if self.model.logit_score else "probability"
        return self.score

    def _needs_keras(self, what):
        if isinstance(self.model, SignatureModel):
            return KerasCNNError(
                f"{what} needs the {CAM_SIGNATURE} signature, which this "
                "SavedModel lacks (a model without a spatial feature map, "
                "or one exported by an older kerascnn: export it again); "
                "use method='integrated-gradients' or 'smoothgrad'."
            )
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

    def _input_gradients(self, x, classes):
        """`(gradient, scores of classes)`: the gradient of each row's
        class score w.r.t. its input."""

        x = tf.convert_to_tensor(x, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x)
            _, scores, _ = self._outputs(x)
            chosen = tf.gather(
                tf.cast(scores, tf.float32), classes, axis=1, batch_dims=1
            )
        grads = tape.gradient(chosen, x)
        if grads is None:
            grads = tf.zeros_like(x)
        return grads, chosen

    def _batched_input_gradients(self, x, classes, batch_size):
        """Input gradients and scores of many rows, `batch_size` at once."""
        grads, scores = [], []
        for start in range(0, len(x), batch_size):
            stop = start + batch_size
            g, s = self._input_gradients(x[start:stop], classes[start:stop])
            grads.append(np.asarray(g))
            scores.append(np.asarray(s))
        return np.concatenate(grads), np.concatenate(scores)

    def cam(self, images, classes, plus=False):
        """Grad-CAM (or ++) at the feature map's resolution, `(N, h, w)`."""
        if self.layer is None:
            raise self._needs_keras("Grad-CAM")
        images = tf.convert_to_tensor(images, tf.float32)
        classes = tf.convert_to_tensor(classes, tf.int32)
        if self._cam_inputs is not None:
            maps, grads = self._cam_inputs(images, classes)
        else:
            maps, grads, _, _ = feature_map_gradients(
                self._probe, self._score, images, classes
            )
        return cam_from(maps, grads, plus)

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
            score=self._score_of(method),
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


def cam_from(maps, grads, plus=False):
    """Grad-CAM (or Grad-CAM++ with `plus`) at the feature map's
    resolution, `(N, h, w)`, from a feature map and its gradient
    (`kerascnn.models.probes.feature_map_gradients`)."""
    grads = np.asarray(grads, np.float64)
    maps = np.asarray(maps, np.float64)
    if plus:
        weights = _gradcam_plus_plus_weights(grads, maps)
    else:
        weights = grads.mean(axis=(1, 2))
    return np.maximum(np.einsum("nhwc,nc->nhw", maps, weights), 0.0)


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
