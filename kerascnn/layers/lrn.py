"""Local Response Normalization (Krizhevsky et al., 2012, section 3.3).

    b[x,y,c] = a[x,y,c] / (k + alpha * sum_{c' in win(c)} a[x,y,c']^2)^beta

where the window spans `depth_radius` channels on either side of `c`. The
paper uses n=5 (depth_radius=2), k=2, alpha=1e-4, beta=0.75.

Keras 3 has no LRN layer. This one calls `tf.nn.local_response_normalization`,
which lowers to a single builtin op in a SavedModel and in TFLite
(`LOCAL_RESPONSE_NORMALIZATION`), so exported models need no custom code.
Note the TensorFlow op does *not* divide alpha by the window size, matching
the paper's formula as written (Caffe divides by n; pass `alpha=1e-4/5` to
reproduce Caffe).
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="kerascnn")
class LocalResponseNormalization(keras.layers.Layer):
    """Normalizes each activation by the energy of its channel neighbours.

    Args:
        depth_radius: int, half-width of the channel window. The window has
            `2 * depth_radius + 1` channels. Defaults to `2` (n=5).
        bias: float, the constant `k`. Defaults to `2.0`.
        alpha: float, scale of the squared sum. Defaults to `1e-4`.
        beta: float, exponent. Defaults to `0.75`.

    Input and output: 4D `(batch, height, width, channels)`, channels last.
    """

    def __init__(
        self, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75, **kwargs
    ):
        super().__init__(**kwargs)
        if int(depth_radius) != depth_radius or depth_radius < 0:
            raise ValueError(
                "`depth_radius` must be a non-negative integer. "
                f"Received: depth_radius={depth_radius}"
            )
        if beta <= 0 or alpha < 0:
            raise ValueError(
                "`alpha` must be >= 0 and `beta` > 0. "
                f"Received: alpha={alpha}, beta={beta}"
            )
        self.depth_radius = int(depth_radius)
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                "LocalResponseNormalization expects 4D channels-last input. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        super().build(input_shape)

    def call(self, inputs):

        # The TF kernel is float32 only; compute there and cast back so the
        # layer also works under mixed precision.
        outputs = tf.nn.local_response_normalization(
            tf.cast(inputs, "float32"),
            depth_radius=self.depth_radius,
            bias=self.bias,
            alpha=self.alpha,
            beta=self.beta,
        )
        return tf.cast(outputs, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            depth_radius=self.depth_radius,
            bias=self.bias,
            alpha=self.alpha,
            beta=self.beta,
        )
        return config
