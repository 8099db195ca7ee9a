"""Precise batch-norm statistics: recomputed over training batches.

During training each BatchNormalization layer keeps an exponential moving
average of its batch statistics (momentum 0.9 in the zoo's ResNets). After
a few dozen steps that average still holds much of its initial value
(0.9**20 = 12%) and lags weights that change quickly, so a model that
trains well can evaluate badly: the small-folder example of
docs/your-own-images.md logged `val_loss 108` on 3 classes.

`recompute_batch_norm_statistics` replaces every trainable BN layer's
moving mean and variance by the mean of its per-batch statistics over up
to `num_batches` training batches, computed with the final weights (the
"precise BN" of Wu & Johnson 2021, https://arxiv.org/abs/2105.07576; the
`PreciseBN` hook of detectron2 and Model Garden's equivalent).
`PreciseBatchNorm`, a callback, does that at the end of the last epoch
before its validation, so the last epoch's `val_loss`/`val_accuracy`, the
saved model, `kerascnn evaluate` and the served model all use the same
statistics. Layers that are frozen (`trainable=False`, as the backbone
while fine-tuning) keep theirs.
"""

import keras
import numpy as np
import tensorflow as tf

# Batches the statistics are averaged over (detectron2 uses 200; a few
# dozen already give a close estimate on CIFAR-sized inputs).
DEFAULT_NUM_BATCHES = 100


def batch_norm_layers(model):
    """The model's trainable BatchNormalization layers, nested ones too."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += batch_norm_layers(layer) if layer.trainable else []
        elif isinstance(layer, keras.layers.BatchNormalization):
            if layer.trainable:
                found.append(layer)
    return found


def recompute_batch_norm_statistics(model, dataset, num_batches=None):
    """Sets BN moving statistics to their mean over training batches.

    Args:
        model: a Keras model.
        dataset: an iterable of `(x, y)` (or `x`) training batches.
        num_batches: at most this many batches are read. Defaults to
            `DEFAULT_NUM_BATCHES`.

    Returns:
        The number of batches read (0: no trainable BN layer, or no data;
        then nothing changed).
    """

    layers = batch_norm_layers(model)
    if not layers:
        return 0
    num_batches = num_batches or DEFAULT_NUM_BATCHES
    saved = [(layer.momentum, layer.moving_mean.numpy(),
              layer.moving_variance.numpy()) for layer in layers]  # fmt: skip
    sums = [[np.zeros_like(m), np.zeros_like(v)] for _, m, v in saved]
    # Momentum 0: after each forward pass a layer's moving statistics are
    # exactly that batch's, which are read and summed.
    for layer in layers:
        layer.momentum = 0.0
    forward = tf.function(lambda x: model(x, training=True))
    seen = 0
    try:
        for batch in dataset:
            if seen >= num_batches:
                break
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            forward(x)
            for total, layer in zip(sums, layers):
                total[0] += layer.moving_mean.numpy()
                total[1] += layer.moving_variance.numpy()
            seen += 1
    finally:
        for (momentum, mean, variance), total, layer in zip(
            saved, sums, layers
        ):
            layer.momentum = momentum
            if seen:
                mean, variance = total[0] / seen, total[1] / seen
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(variance)
    return seen


class PreciseBatchNorm(keras.callbacks.Callback):
    """Recomputes BN statistics at the end of the last epoch.

    Runs before that epoch's validation (Keras calls `on_test_begin` from
    `fit`), or at its end when there is no validation data, and before the
    checkpoint callbacks, which must come after it in the list.

    Args:
        dataset: the training dataset (`(x, y)` batches).
        num_batches: batches to average over. Defaults to
            `DEFAULT_NUM_BATCHES`.
        last_epoch: index (0-based) of the epoch after which to run.
            Defaults to the last epoch of `fit`.
    """

    def __init__(self, dataset, num_batches=None, last_epoch=None):
        super().__init__()
        self.dataset = dataset
        self.num_batches = num_batches
        self.last_epoch = last_epoch
        self.batches_read = 0
        self._epoch = None
        self._done = False

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._done = False

    def _is_last(self):
        last = self.last_epoch
        if last is None:
            last = (self.params or {}).get("epochs", 0) - 1
        return self._epoch is not None and self._epoch >= last

    def _run(self):
        if self._done or not self._is_last():
            return
        self._done = True
        self.batches_read = recompute_batch_norm_statistics(
            self.model, self.dataset, self.num_batches
        )

    def on_test_begin(self, logs=None):
        self._run()

    def on_epoch_end(self, epoch, logs=None):
        self._run()
