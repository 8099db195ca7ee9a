"""The output layer every image classifier ends with."""

import keras


def predictions(x, num_classes, activation, name="predictions"):
    """Dense `num_classes` output, computed in float32 under any policy.

    Under `mixed_bfloat16`/`mixed_float16` a softmax in 16 bits loses
    probability mass and the loss precision (Keras' mixed precision guide);
    the last layer therefore stays float32, which changes nothing under the
    default float32 policy.
    """
    return keras.layers.Dense(
        num_classes, activation=activation, dtype="float32", name=name
    )(x)


def fc_classifier(x, layer_names, units, dropout, num_classes, activation):
    """Flatten, then `Dense(units, relu)` + `Dropout` per name pair, then
    `predictions`: the AlexNet/VGG classifier (fc6-fc7, fc1-fc2)."""
    x = keras.layers.Flatten(name="flatten")(x)
    for dense_name, dropout_name in layer_names:
        x = keras.layers.Dense(units, activation="relu", name=dense_name)(x)
        x = keras.layers.Dropout(dropout, name=dropout_name)(x)
    return predictions(x, num_classes, activation)
