"""Every registered model, the day it is registered (as timm and keras-hub
test their zoos): built at its smallest input, config round trip as JSON,
`.keras` save and load, and a mixed_bfloat16 forward pass."""

import json

import keras
import numpy as np
import pytest

from kerascnn import models
from kerascnn.errors import InvalidArgumentError

NUM_CLASSES = 3
# Narrow fully connected layers: the conv stacks stay as published, only
# the 4096-wide classifiers (and the tagger's LSTMs) shrink for speed.
SMALL_OPTIONS = {
    "alexnet": {"fc_units": 16},
    "vgg11": {"fc_units": 16},
    "vgg13": {"fc_units": 16},
    "vgg16": {"fc_units": 16},
    "vgg19": {"fc_units": 16},
    "slot_tagger": {"vocab_size": 30, "units": 4, "embedding_dim": 8},
}
SEQUENCE_LENGTH = 6


def _input_shape(info):
    if info.task == "sequence_tagging":
        return (SEQUENCE_LENGTH,)
    return info.min_input_shape


def _build(name):
    info = models.get_model_info(name)
    return models.build(
        name,
        input_shape=_input_shape(info),
        num_classes=NUM_CLASSES,
        **SMALL_OPTIONS.get(name, {}),
    )


def _example(info, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    if info.task == "sequence_tagging":
        vocab = SMALL_OPTIONS["slot_tagger"]["vocab_size"]
        return rng.integers(1, vocab, (batch, SEQUENCE_LENGTH), dtype="int32")
    return rng.random((batch, *info.min_input_shape), dtype=np.float32)


def _probabilities(y):
    y = y["tags"] if isinstance(y, dict) else y
    return np.asarray(keras.ops.convert_to_numpy(y), dtype=np.float32)


@pytest.mark.parametrize("name", models.list_models())
def test_smallest_input_config_json_and_keras_file_round_trips(name, tmp_path):
    """One build per model (the deep ones take seconds to build): forward
    pass, config through JSON, then `.keras` save and load."""
    info = models.get_model_info(name)
    assert info.reference and info.family == name.rstrip("0123456789")
    model = _build(name)
    x = _example(info)
    y = _probabilities(model(x, training=False))
    expected = (2, NUM_CLASSES)
    if info.task == "sequence_tagging":
        expected = (2, SEQUENCE_LENGTH, NUM_CLASSES)
    assert y.shape == expected and np.all(np.isfinite(y))
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-5)

    text = json.dumps(model.get_config(), sort_keys=True)
    clone = model.__class__.from_config(json.loads(text))  # it consumes it
    assert json.dumps(clone.get_config(), sort_keys=True) == text
    assert clone.count_params() == model.count_params()
    del clone

    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(_probabilities(loaded(x, training=False)), y)
    assert [w.shape for w in loaded.weights] == [w.shape for w in model.weights]


@pytest.mark.parametrize("name", models.list_models())
def test_mixed_bfloat16_forward_has_float32_output(name):
    info = models.get_model_info(name)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = _build(name)
        y = model(_example(info, seed=2), training=False)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    outputs = y.values() if isinstance(y, dict) else [y]
    assert all(
        keras.backend.standardize_dtype(o.dtype) == "float32" for o in outputs
    )
    probs = _probabilities(y)
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "name",
    [
        n
        for n in models.list_models()
        if models.get_model_info(n).task == "image_classification"
    ],
)
def test_one_pixel_below_the_smallest_input_is_refused(name):
    height, width, channels = models.get_model_info(name).min_input_shape
    with pytest.raises(InvalidArgumentError, match=f"at least {height}x"):
        models.build(name, input_shape=(height - 1, width, channels))
