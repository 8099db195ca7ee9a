"""The recipe's optimizer: one-cycle, Nesterov, weight decay, weight EMA."""

import numpy as np
import pytest

from kerascnn.config import recipe_for
from kerascnn.optimizers import NO_DECAY_NAMES, ema_momentum, make_optimizer
from kerascnn.schedules import OneCycle


def test_fast_resnet_recipe_builds_one_cycle_nesterov_sgd():
    config = recipe_for("resnet20")
    opt = make_optimizer(config, steps_per_epoch=10)
    assert opt.nesterov is True and opt.momentum == 0.9
    schedule = opt._learning_rate
    assert isinstance(schedule, OneCycle)
    assert schedule.total_steps == config.epochs * 10
    assert schedule.warmup_steps == config.warmup_epochs * 10
    assert schedule.peak == config.learning_rate
    assert not opt.use_ema  # BN statistics are not averaged: no EMA


def test_paper_resnet_recipe_keeps_plain_momentum_and_steps():
    import keras

    opt = make_optimizer(recipe_for("resnet20", recipe="paper"), 10)
    assert opt.nesterov is False
    assert isinstance(
        opt._learning_rate, keras.optimizers.schedules.PiecewiseConstantDecay
    )


def test_weight_decay_skips_batch_norm_and_biases():
    from kerascnn import models

    model = models.build("resnet20", input_shape=(8, 8, 3))
    dense_bias = [w for w in model.weights if w.path.endswith("bias")]
    opt = make_optimizer(recipe_for("resnet20"), steps_per_epoch=1)
    opt.build(model.trainable_variables)
    decayed = {
        w.path for w in model.trainable_variables if opt._use_weight_decay(w)
    }
    names = {w.path.rsplit("/", 1)[-1] for w in model.trainable_variables}
    assert {"kernel", "gamma", "beta", "bias"} <= names
    for w in model.trainable_variables:
        leaf = w.path.rsplit("/", 1)[-1]
        assert (w.path in decayed) == (leaf not in NO_DECAY_NAMES), w.path
    assert dense_bias and not any(w.path in decayed for w in dense_bias)


def test_ema_momentum_is_capped_to_a_quarter_of_the_run():
    assert ema_momentum(0.999, total_steps=4300) == 0.999
    assert ema_momentum(0.999, total_steps=16) == pytest.approx(0.75)
    assert ema_momentum(0.999, total_steps=2) == 0.0


def _tiny_fit(ema, epochs=6):
    """Fits a 2-weight linear model; returns (model, optimizer, the raw
    weights seen at the last epoch's end, before Keras finalizes)."""
    import keras

    keras.utils.set_random_seed(0)
    config = recipe_for(
        "lenet", optimizer="sgd", learning_rate=0.05, schedule="constant",
        warmup_epochs=0, ema_momentum=ema, epochs=epochs,
    )  # fmt: skip
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    opt = make_optimizer(config, steps_per_epoch=8)
    model.compile(optimizer=opt, loss="mse")
    raw = {}

    class Grab(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raw["weights"] = [w.numpy().copy() for w in model.weights]

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype("float32")
    y = x @ np.array([[2.0], [-1.0]], "float32") + 0.5
    model.fit(x, y, batch_size=8, epochs=epochs, verbose=0, callbacks=[Grab()])
    return model, opt, raw["weights"]


def test_ema_the_model_ends_with_the_averaged_weights():
    model, opt, raw = _tiny_fit(ema=0.9)
    assert opt.use_ema and opt.ema_momentum == pytest.approx(0.9)
    averages = [v.numpy() for v in opt._model_variables_moving_average]
    final = [w.numpy() for w in model.weights]
    for f, a in zip(final, averages):
        np.testing.assert_allclose(f, a)
    # The average lags the raw weights, which were still moving.
    assert not all(np.allclose(f, r) for f, r in zip(final, raw))


def test_no_ema_the_model_ends_with_the_raw_weights():
    model, opt, raw = _tiny_fit(ema=0.0)
    assert not opt.use_ema
    for f, r in zip(model.weights, raw):
        np.testing.assert_array_equal(f.numpy(), r)


def test_the_average_survives_the_backup_a_resumed_run_loads(tmp_path):
    """The run's backup is `model.weights.h5` with the optimizer state
    (`kerascnn.callbacks.EpochBackupAndRestore`): the averages are in it,
    so a resumed run goes on averaging where it stopped."""
    model, opt, _ = _tiny_fit(ema=0.9)
    path = str(tmp_path / "backup.weights.h5")
    model.save_weights(path)
    fresh, fresh_opt, _ = _tiny_fit(ema=0.9, epochs=1)  # other values
    before = [v.numpy() for v in fresh_opt._model_variables_moving_average]
    fresh.load_weights(path)
    after = [v.numpy() for v in fresh_opt._model_variables_moving_average]
    saved = [v.numpy() for v in opt._model_variables_moving_average]
    assert not all(np.allclose(b, s) for b, s in zip(before, saved))
    for a, s in zip(after, saved):
        np.testing.assert_array_equal(a, s)
    assert int(fresh_opt.iterations) == int(opt.iterations)
