"""Losses Keras lacks: sparse-label cross-entropy with label smoothing."""

import keras


@keras.saving.register_keras_serializable(package="kerascnn")
class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy on integer labels with label smoothing.

    `keras.losses.SparseCategoricalCrossentropy` has no `label_smoothing`;
    this one-hot encodes the labels and delegates to the categorical loss.

    Args:
        label_smoothing: float in [0, 1). Defaults to `0.1`.
        from_logits: whether predictions are logits. Defaults to `False`.
    """

    def __init__(self, label_smoothing=0.1, from_logits=False, **kwargs):
        super().__init__(**kwargs)
        self.label_smoothing = float(label_smoothing)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        num_classes = keras.ops.shape(y_pred)[-1]
        labels = keras.ops.one_hot(
            keras.ops.cast(y_true, "int32"), num_classes, dtype=y_pred.dtype
        )
        return keras.losses.categorical_crossentropy(
            labels,
            y_pred,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            label_smoothing=self.label_smoothing, from_logits=self.from_logits
        )
        return config
