"""The training recipe's optimizer: learning-rate schedule, weight decay.

`make_optimizer(config, steps_per_epoch)` turns the `TrainConfig` fields
`optimizer`, `learning_rate`, `momentum`, `weight_decay`, `schedule` and
`warmup_epochs` into a Keras optimizer; `kerascnn.train.compile_model`
uses it.
"""


def make_optimizer(config, steps_per_epoch, schedule=None):
    """The recipe's optimizer, learning-rate schedule and weight decay.

    `schedule` (a Keras learning-rate schedule) replaces the recipe's,
    e.g. `kerascnn.fine_tune`'s two phases.

    `config.weight_decay` is the papers' L2 coefficient (see
    `kerascnn.config.TrainConfig`): SGD gets the Keras decoupled decay that
    matches it (`_decoupled_sgd_decay`); Adam and RMSprop take it as Keras'
    decoupled `weight_decay`, and AdamW uses 1e-4 when it is 0. Biases and
    batch-norm scales and offsets are not decayed.
    """
    import keras

    lr = schedule or _schedule(config, steps_per_epoch)
    wd = config.weight_decay or None
    if config.optimizer == "sgd":
        opt = keras.optimizers.SGD(
            lr,
            momentum=config.momentum,
            nesterov=False,
            weight_decay=_decoupled_sgd_decay(wd, config.momentum),
        )
    elif config.optimizer == "adamw":
        opt = keras.optimizers.AdamW(lr, weight_decay=wd or 1e-4)
    elif config.optimizer == "rmsprop":
        opt = keras.optimizers.RMSprop(lr, weight_decay=wd)
    else:
        opt = keras.optimizers.Adam(lr, weight_decay=wd)
    if wd:
        # Kernels and embeddings only: not biases or BN scales/offsets.
        opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return opt


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
    import keras

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
    if config.schedule == "step":
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            [int(total * 0.5), int(total * 0.75)], [lr, lr / 10, lr / 100]
        )
    return lr
