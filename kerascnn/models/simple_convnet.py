"""SimpleConvNet: the teaching network of "Deep Learning from Scratch", ch. 7.

conv(30 filters, 5x5, stride 1, valid) - ReLU - max-pool 2 - dense 100 -
ReLU - dense num_classes - softmax. On 28x28x1 with 10 classes it has
433,890 parameters.
"""

import keras

from kerascnn.models import _validation as v
from kerascnn.models.registry import register_model

REFERENCE = (
    "Saito (2016), Deep Learning from Scratch, ch. 7 "
    "(https://github.com/oreilly-japan/deep-learning-from-scratch)"
)


@register_model(
    default_input_shape=(28, 28, 1),
    default_num_classes=10,
    reference=REFERENCE,
    num_params=433_890,
)
def simple_convnet(
    input_shape=(28, 28, 1),
    num_classes=10,
    filters=30,
    kernel_size=5,
    hidden_units=100,
    classifier_activation="softmax",
    name="simple_convnet",
):
    """Builds SimpleConvNet.

    Reference: Saito, *Deep Learning from Scratch* (2016), chapter 7.

    Args:
        input_shape: `(H, W, C)`; at least `kernel_size + 1` pixels a side.
            Defaults to `(28, 28, 1)` (MNIST).
        num_classes: int, width of the output layer. Defaults to `10`.
        filters: int, convolution filters. Defaults to `30`.
        kernel_size: int, square kernel size. Defaults to `5`.
        hidden_units: int, units of the hidden dense layer. Defaults to `100`.
        classifier_activation: activation of the output layer, or `None` for
            logits. Defaults to `"softmax"`.
        name: model name. Defaults to `"simple_convnet"`.

    Returns:
        A `keras.Model`.

    Example:
        >>> model = simple_convnet()
        >>> model.count_params()
        433890
    """
    v.check_positive_int("num_classes", num_classes)
    v.check_positive_int("filters", filters)
    v.check_positive_int("kernel_size", kernel_size)
    v.check_positive_int("hidden_units", hidden_units)
    v.check_image_shape("simple_convnet", input_shape, kernel_size + 1)

    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Conv2D(
        filters, kernel_size, activation="relu", name="conv1"
    )(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(hidden_units, activation="relu", name="fc1")(x)
    outputs = keras.layers.Dense(
        num_classes,
        activation=classifier_activation,
        name="predictions",
        dtype="float32",  # float32 softmax under mixed precision
    )(x)
    return keras.Model(inputs, outputs, name=name)
