"""The training recipe's optimizer: learning-rate schedule, weight decay.

`make_optimizer(config, steps_per_epoch)` turns the `TrainConfig` fields
`optimizer`, `learning_rate`, `momentum`, `nesterov`, `weight_decay`,
`schedule`, `warmup_epochs` and `ema_momentum` into a Keras optimizer;
`kerascnn.train.compile_model` uses it.

Weight averaging (`ema_momentum > 0`) is Keras' own `use_ema`: the
optimizer keeps an exponential moving average of the trainable weights in
its state (so the run's backup and a resumed run keep it), and
`Model.fit` copies the average into the model when training ends
(`Optimizer.finalize_variable_values`), so the saved `model.keras`, the
test metrics and the export hold the averaged weights. Per-epoch
validation and checkpoints see the raw weights.
"""

import keras

from kerascnn.schedules import OneCycle

# Weights that are never decayed: biases and batch-norm scales/offsets
# (Keras matches these against variable names).
NO_DECAY_NAMES = ("bias", "gamma", "beta")


def make_optimizer(config, steps_per_epoch, schedule=None):
    """The recipe's optimizer, learning-rate schedule and weight decay.

    `schedule` (a Keras learning-rate schedule) replaces the recipe's,
    e.g. `kerascnn.fine_tune`'s two phases.

    `config.weight_decay` is the papers' L2 coefficient (see
    `kerascnn.config.TrainConfig`): SGD gets the Keras decoupled decay that
    matches it (`_decoupled_sgd_decay`); Adam and RMSprop take it as Keras'
    decoupled `weight_decay`, and AdamW uses 1e-4 when it is 0. Biases and
    batch-norm scales and offsets are not decayed (`NO_DECAY_NAMES`).
    `config.ema_momentum > 0` turns on Keras' weight averaging.
    """

    lr = schedule or _schedule(config, steps_per_epoch)
    wd = config.weight_decay or None
    ema = {}
    if config.ema_momentum:
        ema = dict(
            use_ema=True,
            ema_momentum=ema_momentum(
                config.ema_momentum, config.epochs * steps_per_epoch
            ),
        )
    if config.optimizer == "sgd":
        opt = keras.optimizers.SGD(
            lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=_decoupled_sgd_decay(wd, config.momentum),
            **ema,
        )
    elif config.optimizer == "adamw":
        opt = keras.optimizers.AdamW(lr, weight_decay=wd or 1e-4, **ema)
    elif config.optimizer == "rmsprop":
        opt = keras.optimizers.RMSprop(lr, weight_decay=wd, **ema)
    else:
        opt = keras.optimizers.Adam(lr, weight_decay=wd, **ema)
    if wd or config.optimizer == "adamw":
        # Kernels and embeddings only: not biases or BN scales/offsets.
        opt.exclude_from_weight_decay(var_names=list(NO_DECAY_NAMES))
    return opt


def ema_momentum(momentum, total_steps):
    """`momentum`, capped so the average spans at most a quarter of the
    run (`1 / (1 - momentum) <= total_steps / 4`).

    Keras' average starts at the weights after the first step and has no
    warm-up, so 0.999 over a 16-step run would end near those first
    weights; a run of the recipe's length keeps the recipe's value.
    """
    return min(momentum, max(0.0, 1.0 - 4.0 / max(total_steps, 1)))


def _decoupled_sgd_decay(l2, momentum):
    """Keras' decoupled decay that matches the papers' L2 `weight_decay`.

    Papers (ResNet, VGG) add `l2 * w` to the gradient, which momentum then
    accumulates: per step the weights shrink by about `lr * l2 / (1 -
    momentum)`. Keras' `weight_decay` shrinks them by `lr * wd` outside the
    momentum buffer, so the same number is 10x weaker at momentum 0.9
    (what that did to ResNet-20: benchmarks/README.md).
    """
    if not l2:
        return None
    return l2 / (1.0 - momentum) if momentum < 1 else l2


def _schedule(config, steps_per_epoch):
    """The learning rate of `config.schedule`, a float or a Keras schedule."""

    total = max(1, config.epochs * steps_per_epoch)
    warmup = config.warmup_epochs * steps_per_epoch
    lr = config.learning_rate
    if config.schedule == "cosine":
        if warmup:
            return keras.optimizers.schedules.CosineDecay(
                lr / 100,
                total - warmup,
                warmup_target=lr,
                warmup_steps=warmup,
            )
        return keras.optimizers.schedules.CosineDecay(lr, total)
    if config.schedule == "one_cycle":
        return OneCycle(lr, total, warmup_steps=min(warmup, total - 1))
    if config.schedule == "step":
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            [int(total * 0.5), int(total * 0.75)], [lr, lr / 10, lr / 100]
        )
    return lr
