"""`square_counter`: the counting task's model, registered from outside
the library (importing this module registers it)."""

from kerascnn.models.registry import register_model
from tests.tasks.counting.data import SIZE


@register_model(
    default_input_shape=(SIZE, SIZE, 1),
    default_num_classes=1,
    reference="the kerascnn test suite",
    task="counting",
)
def square_counter(input_shape=(SIZE, SIZE, 1), num_classes=1):
    import keras

    inputs = keras.Input(input_shape, name="images")
    x = keras.layers.Conv2D(8, 2, strides=2, activation="relu", name="c1")(
        inputs
    )
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(32, activation="relu", name="fc")(x)
    outputs = keras.layers.Dense(num_classes, name="count", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="square_counter")
