"""Parameter-free ResNet shortcut (He et al., 2016, option A)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerascnn")
class ZeroPadShortcut(keras.layers.Layer):
    """Subsamples spatially by `strides` and zero-pads channels to `filters`.

    Args:
        filters: int, output channels (>= input channels).
        strides: int, spatial subsampling factor. Defaults to `2`.
    """

    def __init__(self, filters, strides=2, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)

    def build(self, input_shape):
        if input_shape[-1] > self.filters:
            raise ValueError(
                "ZeroPadShortcut cannot reduce channels. Received: "
                f"input channels={input_shape[-1]}, filters={self.filters}"
            )
        super().build(input_shape)

    def call(self, inputs):
        s = self.strides
        x = inputs[:, ::s, ::s, :]
        extra = self.filters - inputs.shape[-1]
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])

    def compute_output_shape(self, input_shape):
        def down(d):
            return None if d is None else (d + self.strides - 1) // self.strides

        return (
            input_shape[0],
            down(input_shape[1]),
            down(input_shape[2]),
            self.filters,
        )

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, strides=self.strides)
        return config
