"""Grad-CAM, Grad-CAM++, integrated gradients and SmoothGrad: the checks
of the papers (completeness, model randomization, localization) on real
MNIST digits, nested base models and the argument errors."""

import keras
import numpy as np
import pytest

from kerascnn.errors import KerasCNNError
from kerascnn.models import probes
from kerascnn.visualize import explain_methods as em

MNIST_TEST = "mnist/t10k-images-idx3-ubyte.gz"
MNIST_TEST_LABELS = "mnist/t10k-labels-idx1-ubyte.gz"
MNIST_TRAIN = "mnist/train-images-idx3-ubyte.gz"
MNIST_TRAIN_LABELS = "mnist/train-labels-idx1-ubyte.gz"


def _read(data_dir, name):
    from kerascnn.data.sources import read_idx

    return read_idx(f"{data_dir}/{name}")


@pytest.fixture(scope="module")
def trained(lenet_run, data_dir):
    """The tiny trained LeNet run, 8 preprocessed test digits and the
    model input of an all-black image (the integrated gradients baseline).
    """
    from kerascnn.data import preprocess_images
    from kerascnn.metadata import load_model_and_metadata
    from kerascnn.predict import _preprocessing

    model, meta = load_model_and_metadata(lenet_run)
    spec = _preprocessing(meta)
    digits = _read(data_dir, MNIST_TEST)[:8, :, :, None]
    x = np.asarray(preprocess_images(digits, spec))
    black = np.asarray(preprocess_images(np.zeros_like(digits[:1]), spec))
    return model, x, black


# ==================== integrated gradients completeness ====================


def test_integrated_gradients_are_complete_at_50_steps(trained):
    model, x, black = trained
    explainer = em.Explainer(model)
    classes = model(x[:6]).numpy().argmax(axis=1)
    attributions, at_x, at_base = explainer.integrated_gradients(
        x[:6], classes, baseline=black, steps=50
    )
    assert explainer.score == "logit"
    assert attributions.shape == (6, 28, 28, 1)
    difference = at_x - at_base
    total = attributions.reshape(6, -1).sum(axis=1)
    assert np.all(np.abs(difference) > 0.2)  # a change worth explaining
    np.testing.assert_allclose(total, difference, rtol=0.05)
    # The check has teeth: 5 steps miss by more than 5% somewhere.
    coarse, _, _ = explainer.integrated_gradients(
        x[:6], classes, baseline=black, steps=5
    )
    error = np.abs(coarse.reshape(6, -1).sum(axis=1) - difference)
    assert np.any(error > 0.05 * np.abs(difference))
    # The scores are the model's own logits: softmax of them is its output.
    logits = np.asarray(explainer._outputs(x[:6])[1])
    np.testing.assert_allclose(
        keras.ops.softmax(logits).numpy(), model(x[:6]).numpy(), atol=1e-5
    )
    np.testing.assert_allclose(at_x, logits[np.arange(6), classes], rtol=1e-4)


def test_integrated_gradients_of_a_plain_callable(trained):
    """A SavedModel signature has no layers: probabilities are the score."""
    model, x, black = trained
    explainer = em.Explainer(lambda batch: model(batch, training=False))
    assert explainer.score == "probability" and explainer.layer is None
    attributions, at_x, at_base = explainer.integrated_gradients(
        x[:2], [7, 2], baseline=black
    )
    np.testing.assert_allclose(
        at_x, model(x[:2]).numpy()[[0, 1], [7, 2]], rtol=1e-5
    )
    np.testing.assert_allclose(
        attributions.reshape(2, -1).sum(1), at_x - at_base, atol=0.02
    )
    with pytest.raises(KerasCNNError, match="internal layers"):
        explainer.explain(x[:1], "gradcam")


# ======================= model randomization (Adebayo) ======================


def _randomize_top(model, count, seed=7):
    """A copy of `model` with its top `count` weighted layers re-drawn from
    their initializers (Adebayo et al.'s cascading randomization)."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    weighted = [layer for layer in copy.layers if layer.weights][::-1]
    for i, layer in enumerate(weighted[:count]):
        init = keras.initializers.GlorotUniform(seed=seed + i)
        layer.kernel.assign(init(layer.kernel.shape))
        layer.bias.assign(np.zeros(layer.bias.shape, np.float32))
    return copy


def _ranks(values):
    """Ranks with ties averaged (maps have many equal zeros)."""
    _, inverse, counts = np.unique(
        values, return_inverse=True, return_counts=True
    )
    return (np.cumsum(counts) - (counts - 1) / 2)[inverse]


def _rank_correlation(a, b):
    """Mean Spearman correlation of paired maps."""
    rhos = [
        np.corrcoef(_ranks(p.ravel()), _ranks(q.ravel()))[0, 1]
        for p, q in zip(a, b)
    ]
    return float(np.nanmean(rhos))


# Adebayo et al. (2018) call a map sensitive to the model when its rank
# correlation with the trained model's map falls well below 1 once the top
# layers are re-drawn; maps that ignore the weights (edge detectors, the
# input itself) stay near 1 (their Fig. 4: > 0.9). On MNIST every method's
# map shares the digit's support (integrated gradients multiplies by
# x - baseline, which is 0 on the black background), and that alone gives
# 0.3-0.5 between unrelated models, so 0.6 separates "follows the weights"
# from "reproduces the input" with room on both sides.
RANDOMIZED_RHO_MAX = 0.6

# How many weighted layers (from the top) the cascade re-draws: LeNet's
# dense head is 3 (predictions, f6_fc, c5_fc). Grad-CAM++ weights the kept
# c3_conv maps by positive gradient parts only, so with only the head
# re-drawn its map stays an activation sum (rho ~0.94 measured); it
# changes once the cascade reaches the layer it explains (4), as in
# Adebayo et al.'s cascading randomization.
RANDOMIZED_LAYERS = {
    "gradcam": 3,
    "gradcam++": 4,
    "integrated-gradients": 3,
    "smoothgrad": 3,
}


@pytest.mark.parametrize("method", em.METHODS)
def test_maps_change_when_top_layers_are_randomized(trained, method):
    model, x, black = trained
    options = {"baseline": black} if "integrated" in method else {}
    x, classes = x[:6], np.arange(6)  # a fixed class per image
    maps = em.explain(model, x, method, classes, **options)
    again = em.explain(model, x, method, classes, **options)
    assert _rank_correlation(maps, again) > 0.999  # deterministic
    randomized = _randomize_top(model, RANDOMIZED_LAYERS[method])
    other = em.explain(randomized, x, method, classes, **options)
    rho = _rank_correlation(maps, other)
    assert rho < RANDOMIZED_RHO_MAX, f"{method}: rho={rho:.2f}"


# ============================ localization ============================

CANVAS = 56


def _pasted(images, rng):
    """Digits pasted at random places on a blank CANVAS x CANVAS canvas;
    returns the canvases and each digit's box (top, left)."""
    n = len(images)
    canvases = np.zeros((n, CANVAS, CANVAS, 1), np.float32)
    corners = rng.integers(0, CANVAS - 28 + 1, size=(n, 2))
    for canvas, image, (top, left) in zip(canvases, images, corners):
        canvas[top : top + 28, left : left + 28, 0] = image / 255.0
    return canvases, corners


def _small_cam_net():
    inputs = keras.Input((CANVAS, CANVAS, 1))
    x = inputs
    for i, filters in enumerate((16, 32, 48), start=1):
        x = keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", name=f"conv{i}"
        )(x)
        if i < 3:
            x = keras.layers.MaxPooling2D(name=f"pool{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="predictions")(
        x
    )
    return keras.Model(inputs, outputs, name="pasted_digits")


@pytest.fixture(scope="module")
def pasted_model(data_dir):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, _ = _pasted(_read(data_dir, MNIST_TRAIN)[:4000], rng)
    y = _read(data_dir, MNIST_TRAIN_LABELS)[:4000]
    model = _small_cam_net()
    model.compile(
        keras.optimizers.Adam(3e-3),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=64, epochs=4, verbose=0)
    return model


@pytest.mark.parametrize("method", em.CAM_METHODS)
def test_grad_cam_finds_the_digit_on_a_large_canvas(
    pasted_model, data_dir, method
):
    rng = np.random.default_rng(1)
    x, corners = _pasted(_read(data_dir, MNIST_TEST)[:64], rng)
    labels = _read(data_dir, MNIST_TEST_LABELS)[:64]
    explanation = em.Explainer(pasted_model).explain(x, method)
    accuracy = (explanation.class_index == labels).mean()
    assert accuracy > 0.7, accuracy  # learned the task (0.84 measured)
    assert explanation.layer == "conv3"
    inside = []
    for heat, (top, left) in zip(explanation.maps, corners):
        total = heat.sum()
        if total > 0:
            inside.append(heat[top : top + 28, left : left + 28].sum() / total)
    uniform = 28 * 28 / CANVAS**2  # a map that knows nothing: 0.25
    assert len(inside) >= 60
    # Measured: 0.80 (Grad-CAM), 0.82 (Grad-CAM++); uniform: 0.25.
    assert np.mean(inside) > max(0.65, 2.5 * uniform), np.mean(inside)


# ============================ nested base ============================


def _nested_lenet(flat):
    """`flat` LeNet as a fine-tuned model would look: an outer model around
    a nested `backbone` (its conv layers), reusing its dense layers."""
    backbone = keras.Model(
        flat.inputs[0], flat.get_layer("flatten").output, name="backbone"
    )
    inputs = keras.Input(flat.input_shape[1:], name="image")
    x = backbone(inputs)
    for name in ("c5_fc", "f6_fc", "predictions"):
        x = flat.get_layer(name)(x)
    return keras.Model(inputs, x, name="finetuned")


@pytest.mark.parametrize("method", em.METHODS)
def test_nested_base_explains_like_the_flat_model(trained, method):
    flat, x, black = trained
    nested = _nested_lenet(flat)
    assert probes.default_layer(nested) == ("backbone", "c3_conv")
    options = {"baseline": black} if "integrated" in method else {}
    got = em.Explainer(nested).explain(x[:3], method, **options)
    want = em.Explainer(flat).explain(x[:3], method, **options)
    assert got.maps.shape == (3, 28, 28)
    assert got.maps.max() == pytest.approx(1.0)
    np.testing.assert_allclose(got.maps, want.maps, atol=1e-4)
    if method in em.CAM_METHODS:
        assert got.layer == "backbone/c3_conv" and want.layer == "c3_conv"


def test_sequential_around_a_nested_base(trained):
    flat, x, _ = trained
    backbone = keras.Model(
        flat.inputs[0], flat.get_layer("s4_pool").output, name="backbone"
    )
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            backbone,
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10, activation="softmax", name="predictions"),
        ]
    )
    explainer = em.Explainer(model, layer="c1_conv")
    assert explainer.layer == "backbone/c1_conv"
    assert explainer.explain(x[:2], "gradcam++").maps.shape == (2, 28, 28)


# ============================ choices and errors ============================


def test_unknown_layer_lists_the_feature_maps(trained):
    model = trained[0]
    with pytest.raises(KerasCNNError) as info:
        em.Explainer(model, layer="c5_fc")
    message = str(info.value)
    assert "is not a layer with feature maps" in message
    assert "c1_conv, c3_conv" in message
    assert message.endswith("Received: layer='c5_fc'")


def test_explicit_layer_and_class(trained):
    model, x, _ = trained
    explanation = em.Explainer(model, layer="c1_conv").explain(
        x[:2], "gradcam", class_index=[1, 4]
    )
    assert explanation.layer == "c1_conv"
    assert explanation.class_index.tolist() == [1, 4]
    assert explanation.probabilities.shape == (2, 10)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "lime"}, "`method` must be one of 'gradcam'"),
        ({"class_index": 10}, "class index in [0, 10)"),
        ({"class_index": [1, 2, 3]}, "class_index"),
        ({"method": "smoothgrad", "samples": 0}, "`samples` must be"),
        (
            {"method": "smoothgrad", "sigma": 1},
            "Unknown explain option(s) sigma",
        ),
    ],
)
def test_bad_arguments_are_one_line_errors(trained, kwargs, message):
    model, x, _ = trained
    with pytest.raises(KerasCNNError) as info:
        em.explain(model, x[:2], **kwargs)
    assert message in str(info.value)


def test_images_must_be_a_batch(trained):
    with pytest.raises(KerasCNNError, match=r"\(N, H, W, C\)"):
        em.explain(trained[0], np.zeros((28, 28, 1)))


_FAST_ZOO = ("lenet", "simple_convnet", "resnet20")


def _zoo_params():
    from kerascnn.models import list_models
    from kerascnn.models.registry import get_model_info

    for name in list_models():
        info = get_model_info(name)
        if info.task != "image_classification":
            continue
        # One of each kind in the default run; deep or wide ones are slow.
        marks = [] if name in _FAST_ZOO else [pytest.mark.slow]
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_zoo_params()))
def test_every_zoo_image_model_explains(name):
    """Parametrized over the registry: a new image model is covered."""
    from kerascnn.models import build
    from kerascnn.models.registry import get_model_info

    info = get_model_info(name)
    shape = info.min_input_shape or info.default_input_shape
    model = build(name, input_shape=shape, num_classes=5)
    x = np.random.default_rng(0).random((1, *shape), np.float32)
    explainer = em.Explainer(model)
    assert tuple(explainer.layer.split("/")) in probes.feature_map_layers(model)
    for method in ("gradcam", "integrated-gradients"):
        result = explainer.explain(x, method, class_index=2, steps=4)
        assert result.maps.shape == (1, *shape[:2])
        assert np.isfinite(result.maps).all()
        assert 0.0 <= result.maps.min() and result.maps.max() <= 1.0
