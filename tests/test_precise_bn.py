"""Precise batch-norm statistics: exact averages over training batches,
and a short real run whose last validation equals `evaluate`."""

import os
import shutil

import keras
import numpy as np
import pytest

from kerascnn.precise_bn import recompute_batch_norm_statistics


def _bn_model():
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.BatchNormalization(momentum=0.9, name="bn")(inputs)
    x = keras.layers.BatchNormalization(name="frozen")(x)
    return keras.Model(inputs, x)


def test_statistics_are_the_mean_of_the_batch_statistics():
    model = _bn_model()
    model.get_layer("frozen").trainable = False
    rng = np.random.RandomState(0)
    batches = [
        (rng.normal(3.0 * i, 1.0 + i, (8, 4, 4, 2)).astype("float32"), None)
        for i in range(3)
    ]
    frozen_before = [w.copy() for w in model.get_layer("frozen").get_weights()]

    assert recompute_batch_norm_statistics(model, batches, num_batches=2) == 2

    bn = model.get_layer("bn")
    used = [x for x, _ in batches[:2]]
    mean = np.mean([x.mean(axis=(0, 1, 2)) for x in used], axis=0)
    variance = np.mean([x.var(axis=(0, 1, 2)) for x in used], axis=0)
    np.testing.assert_allclose(bn.moving_mean.numpy(), mean, rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), variance, rtol=1e-4)
    assert bn.momentum == 0.9  # restored
    for a, b in zip(model.get_layer("frozen").get_weights(), frozen_before):
        np.testing.assert_array_equal(a, b)


def test_no_batch_norm_layer_changes_nothing():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert recompute_batch_norm_statistics(model, [np.ones((2, 3))]) == 0


@pytest.fixture(scope="module")
def three_classes(data_dir, tmp_path_factory):
    """cat/dog/frog, 16 real CIFAR-10 JPEGs each, no split folders."""
    root = tmp_path_factory.mktemp("precise") / "photos"
    for name in ("cat", "dog", "frog"):
        src = os.path.join(data_dir, "cifar10", "train", name)
        os.makedirs(root / name)
        for f in sorted(os.listdir(src))[:16]:
            shutil.copy(os.path.join(src, f), root / name / f)
    return str(root)


def test_last_validation_equals_evaluate_after_few_steps(
    three_classes, tmp_path
):
    from kerascnn.config import recipe_for
    from kerascnn.tasks import evaluate
    from kerascnn.train import fit

    config = recipe_for(
        "resnet20", dataset=three_classes, epochs=2, batch_size=16,
        run_dir=str(tmp_path / "run"), export=False, log_format="quiet",
    )  # fmt: skip
    assert config.precise_bn_batches > 0
    result = fit(config, resume=False)
    metrics = evaluate(result.run_dir, batch_size=7)  # other batches too
    assert metrics["split"] == "validation"
    assert result.history["val_loss"][-1] == pytest.approx(
        metrics["loss"], rel=1e-5
    )
    assert result.history["val_accuracy"][-1] == pytest.approx(
        metrics["accuracy"], abs=1e-6
    )
    # 6 steps leave momentum-0.9 statistics mostly at their start (the
    # loss was in the hundreds); averaged ones give a sane loss.
    assert metrics["loss"] < 5.0
