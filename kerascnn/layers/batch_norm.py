"""BatchNormalization that trains with TensorFlow's fused kernel.

Keras 3 normalizes a training batch with separate ops (mean, squared
difference, multiply, add, and their gradients). On TensorFlow the same
math exists as one fused op, `FusedBatchNormV3`, which oneDNN runs in one
pass over the tensor and whose gradient is one op too, so training steps
spend less time in batch norm (measured: benchmarks/README.md).

Only the training path changes; inference (and thus export, TFLite and
serving) runs Keras' own code. The layer has the same weights, config and
moving-statistics rule (biased batch variance) as
`keras.layers.BatchNormalization`, so checkpoints are interchangeable.
"""

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="kerascnn")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` with a fused training step.

    The fused kernel is used when the backend is TensorFlow, the input is a
    4-D channels-last tensor without a mask, and the layer is in training
    mode with neither `renorm` nor `synchronized`; otherwise it falls back
    to the parent class. Takes the parent's arguments.
    """

    def call(self, inputs, training=None, mask=None):
        if not self._can_fuse(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        return self._fused_training_call(inputs)

    def _can_fuse(self, inputs, training, mask):
        return (
            bool(training)
            and self.trainable
            and mask is None
            and keras.backend.backend() == "tensorflow"
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and not self.renorm
            and not self.synchronized
        )

    def _fused_training_call(self, inputs):

        # Like the parent: statistics in float32 even under mixed precision.
        x = tf.cast(inputs, "float32")
        channels = x.shape[-1]
        gamma = self.gamma if self.scale else tf.ones([channels])
        beta = self.beta if self.center else tf.zeros([channels])
        outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x,
            scale=tf.cast(gamma, "float32"),
            offset=tf.cast(beta, "float32"),
            mean=tf.zeros([0]),
            variance=tf.zeros([0]),
            # cuDNN rejects epsilon < 1e-5 (as tf.nn.fused_batch_norm does).
            epsilon=max(self.epsilon, 1.001e-5),
            is_training=True,
            data_format="NHWC",
        )
        # The kernel returns the unbiased (n - 1) batch variance for the
        # moving average; Keras uses the biased one. Undo the correction.
        n = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), "float32")
        variance = variance * ((n - 1.0) / tf.maximum(n, 2.0))
        self._update_moving_statistics(mean, variance)
        return ops.cast(outputs, self.compute_dtype)

    def _update_moving_statistics(self, mean, variance):
        m = self.momentum
        self.moving_mean.assign(
            self.moving_mean * m
            + ops.cast(mean, self.moving_mean.dtype) * (1 - m)
        )
        self.moving_variance.assign(
            self.moving_variance * m
            + ops.cast(variance, self.moving_variance.dtype) * (1 - m)
        )
