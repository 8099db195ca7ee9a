import json

import keras
import numpy as np
import pytest

from kerascnn.layers import LocalResponseNormalization


def _reference_lrn(x, depth_radius, bias, alpha, beta):
    """The paper's formula, written out channel by channel."""
    out = np.empty_like(x)
    channels = x.shape[-1]
    for c in range(channels):
        lo, hi = max(0, c - depth_radius), min(channels, c + depth_radius + 1)
        energy = np.sum(x[..., lo:hi] ** 2, axis=-1)
        out[..., c] = x[..., c] / (bias + alpha * energy) ** beta
    return out


@pytest.mark.parametrize(
    "radius, bias, alpha, beta", [(2, 2.0, 1e-4, 0.75), (1, 1.0, 0.5, 0.5)]
)
def test_matches_the_paper_formula(radius, bias, alpha, beta):
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 8)).astype("float32")
    layer = LocalResponseNormalization(radius, bias, alpha, beta)
    np.testing.assert_allclose(
        np.asarray(layer(x)),
        _reference_lrn(x, radius, bias, alpha, beta),
        rtol=1e-5,
    )


def test_config_round_trips_through_json():
    layer = LocalResponseNormalization(depth_radius=3, alpha=2e-4, name="lrn")
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(layer)))
    clone = keras.saving.deserialize_keras_object(config)
    assert isinstance(clone, LocalResponseNormalization)
    assert clone.get_config() == layer.get_config()


def test_rejects_bad_arguments_and_shapes():
    with pytest.raises(ValueError, match="depth_radius"):
        LocalResponseNormalization(depth_radius=-1)
    with pytest.raises(ValueError, match="4D"):
        LocalResponseNormalization()(np.ones((2, 3), "float32"))


def test_computes_in_the_mixed_precision_compute_dtype():
    x = keras.ops.ones((1, 2, 2, 4), dtype="float32")
    layer = LocalResponseNormalization(dtype="mixed_bfloat16")
    assert keras.backend.standardize_dtype(layer(x).dtype) == "bfloat16"
