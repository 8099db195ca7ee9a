import keras
import numpy as np
import pytest
import tensorflow as tf

from kerascnn.layers import FusedBatchNormalization


def _pair(**kwargs):
    """A Keras BN and a fused BN with the same (non-trivial) weights."""
    shape = (4, 5, 5, 3)
    keras_bn = keras.layers.BatchNormalization(**kwargs)
    fused_bn = FusedBatchNormalization(**kwargs)
    keras_bn.build(shape)
    fused_bn.build(shape)
    rng = np.random.default_rng(0)
    weights = [
        rng.uniform(0.5, 1.5, w.shape).astype("float32")
        for w in keras_bn.get_weights()
    ]
    keras_bn.set_weights(weights)
    fused_bn.set_weights(weights)
    x = rng.normal(2.0, 3.0, size=shape).astype("float32")
    return keras_bn, fused_bn, tf.constant(x)


def _train_step(layer, x):
    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.range(1.0, 4.0))
        variables = layer.trainable_variables
        return y, tape.gradient(loss, [x] + variables)

    return step(x)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"momentum": 0.9, "epsilon": 1e-5},
        {"center": False},
        {"scale": False, "epsilon": 1e-3},
    ],
)
def test_training_step_matches_keras(kwargs):
    keras_bn, fused_bn, x = _pair(**kwargs)
    y_ref, grads_ref = _train_step(keras_bn, x)
    y, grads = _train_step(fused_bn, x)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    assert len(grads) == len(grads_ref)
    for g, g_ref in zip(grads, grads_ref):
        np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-4)
    # Moving statistics follow Keras' rule, biased variance included.
    np.testing.assert_allclose(
        fused_bn.moving_mean, keras_bn.moving_mean, rtol=1e-6
    )
    np.testing.assert_allclose(
        fused_bn.moving_variance, keras_bn.moving_variance, rtol=1e-5
    )


def _op_types(layer, training):
    fn = tf.function(lambda x: layer(x, training=training))
    graph = fn.get_concrete_function(tf.TensorSpec((None, 5, 5, 3))).graph
    return {op.type for op in graph.get_operations()}


def test_fused_kernel_only_in_training():
    _, fused_bn, _ = _pair()
    assert "FusedBatchNormV3" in _op_types(fused_bn, training=True)
    assert "FusedBatchNormV3" not in _op_types(fused_bn, training=False)


def test_frozen_layer_uses_moving_statistics():
    keras_bn, fused_bn, x = _pair()
    keras_bn.trainable = fused_bn.trainable = False
    np.testing.assert_allclose(
        fused_bn(x, training=True), keras_bn(x, training=True), rtol=1e-6
    )
    assert "FusedBatchNormV3" not in _op_types(fused_bn, training=True)


def test_inputs_it_cannot_fuse_fall_back_to_keras():
    x = np.random.default_rng(1).normal(size=(8, 6)).astype("float32")
    keras_bn = keras.layers.BatchNormalization()
    fused_bn = FusedBatchNormalization()
    np.testing.assert_allclose(
        fused_bn(x, training=True), keras_bn(x, training=True), rtol=1e-5
    )


def test_mixed_precision_returns_the_compute_dtype():
    layer = FusedBatchNormalization(dtype="mixed_bfloat16")
    y = layer(tf.ones((2, 3, 3, 4), "bfloat16"), training=True)
    assert y.dtype == tf.bfloat16
    assert layer.moving_mean.dtype == "float32"


def test_checkpoints_are_interchangeable_with_keras_bn(tmp_path):
    inputs = keras.Input((5, 5, 3))
    outputs = FusedBatchNormalization(momentum=0.9, name="bn")(inputs)
    model = keras.Model(inputs, outputs)
    keras_bn, _, x = _pair(momentum=0.9)
    model.get_layer("bn").set_weights(keras_bn.get_weights())
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("bn"), FusedBatchNormalization)
    assert loaded.get_layer("bn").get_config() == keras_bn.get_config() | {
        "name": "bn"
    }
    np.testing.assert_allclose(loaded(x), keras_bn(x), rtol=1e-6)
