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
            loss = tf.reduce_sum(tf.cast(y, "float32") * tf.range(1.0, 4.0))
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


def _bf16_grid_batch():
    """Channels with a large mean and a small spread (where statistics
    taken in bf16 go wrong), on values bf16 holds exactly, so float32
    and bf16 layers see the same input."""
    rng = np.random.default_rng(2)
    x = 8.0 + rng.integers(0, 16, size=(8, 4, 4, 3)) / 16.0
    return tf.constant(x.astype("float32"))


@pytest.mark.parametrize(
    "layer_class", [FusedBatchNormalization, keras.layers.BatchNormalization]
)
def test_bf16_statistics_and_outputs_match_float32(layer_class):
    """Under mixed_bfloat16 the batch statistics, the moving averages and
    the gradients are float32 math: only the output is rounded to bf16."""
    x = _bf16_grid_batch()
    ref = layer_class(momentum=0.9, epsilon=1e-5)
    bf16 = layer_class(momentum=0.9, epsilon=1e-5, dtype="mixed_bfloat16")
    y_ref, grads_ref = _train_step(ref, x)
    y, grads = _train_step(bf16, tf.cast(x, "bfloat16"))
    assert {v.dtype for v in bf16.weights} == {"float32"}
    assert y.dtype == tf.bfloat16
    # One bf16 rounding of the normalized output: <= 2^-9 relative.
    np.testing.assert_allclose(
        tf.cast(y, "float32"), y_ref, rtol=2**-8, atol=2**-8
    )
    # Statistics of x (mean ~8.5, std ~0.3): float32-exact, where bf16
    # (step 1/16 at 8) would be off by up to 0.03 in the mean.
    np.testing.assert_allclose(bf16.moving_mean, ref.moving_mean, rtol=1e-6)
    np.testing.assert_allclose(
        bf16.moving_variance, ref.moving_variance, rtol=1e-5
    )
    # Gamma and beta gradients: float32 sums over the batch.
    for g, g_ref in zip(grads[1:], grads_ref[1:]):
        np.testing.assert_allclose(g, g_ref, rtol=1e-2, atol=1e-3)
