"""The fine-tuning schedule of a run that starts from pretrained weights.

Keras' transfer-learning guide, in one `fit`:

1. **Head only** for `freeze_epochs` epochs: the backbone is frozen, so
   only the head (the layers after its pooling: `predictions`, VGG's
   `fc1`/`fc2`) learns, at the recipe's learning rate.
2. **All layers** for the remaining epochs at `FINE_TUNE_LR_FACTOR` times
   that rate, decayed to 0 by a cosine.

Batch normalization stays in inference mode (`trainable=False`) in both
phases: its statistics come with the weights, and a few hundred images
in small batches would only make them noisier (the guide's advice). So
the layers that train in phase 2 are every layer but BN.

One optimizer serves both phases: it is built over phase 2's variables
before training, so its slots, the epoch-end backups and a resumed run
are the same whichever phase they come from; `FreezeBackbone` switches
the trainable flags at the phase boundary and retraces the train step.
"""

import math

import keras

from kerascnn.models.weights import head_layer_names

# Phase 2 runs at this fraction of the head's learning rate.
FINE_TUNE_LR_FACTOR = 0.1
# Default share of the epochs spent on the head alone.
FREEZE_FRACTION = 1 / 3


def default_freeze_epochs(epochs):
    """Head-only epochs when `--weights` is given without a number."""
    if epochs < 2:
        return 0
    return max(1, min(epochs - 1, math.ceil(epochs * FREEZE_FRACTION)))


@keras.saving.register_keras_serializable(package="kerascnn")
class FineTuneSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`learning_rate` for `head_steps`, then a cosine from
    `learning_rate * factor` to 0 over the remaining steps."""

    def __init__(self, learning_rate, head_steps, total_steps,
                 factor=FINE_TUNE_LR_FACTOR):  # fmt: skip
        self.learning_rate = float(learning_rate)
        self.head_steps = int(head_steps)
        self.total_steps = int(total_steps)
        self.factor = float(factor)

    def __call__(self, step):
        from keras import ops

        step = ops.cast(step, "float32")
        rest = max(1, self.total_steps - self.head_steps)
        done = ops.clip((step - self.head_steps) / rest, 0.0, 1.0)
        tuned = (
            self.learning_rate
            * self.factor
            * 0.5
            * (1.0 + ops.cos(math.pi * done))
        )
        return ops.where(step < self.head_steps, self.learning_rate, tuned)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "head_steps": self.head_steps,
            "total_steps": self.total_steps,
            "factor": self.factor,
        }


def learning_rate(config, steps_per_epoch):
    """The `FineTuneSchedule` of a `TrainConfig` with `weights`."""
    return FineTuneSchedule(
        config.learning_rate,
        config.freeze_epochs * steps_per_epoch,
        config.epochs * steps_per_epoch,
    )


def _set_phase(model, head, head_only):
    """Trainable flags of one phase; BN layers stay frozen in both."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
        elif layer.weights:
            layer.trainable = layer.name in head or not head_only


def prepare(model, head):
    """Builds the optimizer over phase 2's variables, then freezes the
    backbone for phase 1. Call after `compile`, before `fit`."""
    _set_phase(model, head, head_only=False)
    model.optimizer.build(model.trainable_variables)
    _set_phase(model, head, head_only=True)


class FreezeBackbone(keras.callbacks.Callback):
    """Phase 1 (head only) before epoch `freeze_epochs`, phase 2 from it.

    Args:
        freeze_epochs: epochs of phase 1.
    """

    def __init__(self, freeze_epochs):
        super().__init__()
        self.freeze_epochs = freeze_epochs
        self._head_only = None

    def on_epoch_begin(self, epoch, logs=None):
        head_only = epoch < self.freeze_epochs
        if head_only == self._head_only:
            return
        first = self._head_only is None
        self._head_only = head_only

        _set_phase(self.model, head_layer_names(self.model), head_only)
        if not (first and head_only):  # fit traced phase 1 already
            self.model.make_train_function(force=True)
