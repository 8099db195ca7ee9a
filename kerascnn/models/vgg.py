"""VGG (Simonyan and Zisserman, 2015): configurations A, B, D and E.

Five blocks of 3x3 convolutions (ReLU, "same" padding), each closed by a
2x2 max pool, then fc1 4096 - fc2 4096 - predictions. Layer names follow
`keras.applications.VGG16` (`block3_conv2`, `fc1`, `predictions`), and at
224x224x3 with 1000 classes `vgg16` has the same 138,357,544 parameters.

Any input of at least 32x32 works (five pools take 32 down to 1x1).
Convolutions use He-normal initialization (He et al., 2015, "Delving deep
into rectifiers", which trained VGG-style nets from scratch with it): with
Keras' default Glorot init a BN-free VGG-16 stays at chance accuracy for
epochs on CIFAR-10. `batch_norm=True` adds BatchNormalization after every
convolution (the "VGG-BN" variant) for higher learning rates.
"""

import keras

from kerascnn.layers import FusedBatchNormalization
from kerascnn.models import _validation as v
from kerascnn.models.registry import register_model

REFERENCE = (
    "Simonyan & Zisserman (2015), Very deep convolutional networks for "
    "large-scale image recognition (https://arxiv.org/abs/1409.1556)"
)
MIN_SIZE = 32
# Convolutions per block; filters per block are 64, 128, 256, 512, 512.
DEPTHS = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}
BLOCK_FILTERS = (64, 128, 256, 512, 512)
# Parameters at 224x224x3 with 1000 classes.
NUM_PARAMS = {
    11: 132_863_336,
    13: 133_047_848,
    16: 138_357_544,
    19: 143_667_240,
}


def _vgg_block(x, block, filters, num_convs, batch_norm):
    for i in range(1, num_convs + 1):
        prefix = f"block{block}_conv{i}"
        x = keras.layers.Conv2D(
            filters,
            3,
            padding="same",
            use_bias=not batch_norm,
            activation=None if batch_norm else "relu",
            kernel_initializer="he_normal",
            name=prefix,
        )(x)
        if batch_norm:
            x = FusedBatchNormalization(name=f"{prefix}_bn")(x)
            x = keras.layers.Activation("relu", name=f"{prefix}_relu")(x)
    return keras.layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)


def _build_vgg(
    depth,
    input_shape,
    num_classes,
    batch_norm=False,
    fc_units=4096,
    dropout=0.5,
    classifier_activation="softmax",
    name=None,
):
    v.check_positive_int("num_classes", num_classes)
    v.check_positive_int("fc_units", fc_units)
    dropout = v.check_rate("dropout", dropout)
    v.check_image_shape(f"vgg{depth}", input_shape, MIN_SIZE)

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for block, (filters, num_convs) in enumerate(
        zip(BLOCK_FILTERS, DEPTHS[depth]), start=1
    ):
        x = _vgg_block(x, block, filters, num_convs, batch_norm)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(fc_units, activation="relu", name="fc1")(x)
    x = keras.layers.Dropout(dropout, name="fc1_dropout")(x)
    x = keras.layers.Dense(fc_units, activation="relu", name="fc2")(x)
    x = keras.layers.Dropout(dropout, name="fc2_dropout")(x)
    outputs = keras.layers.Dense(
        num_classes,
        activation=classifier_activation,
        name="predictions",
        dtype="float32",  # float32 softmax under mixed precision
    )(x)
    return keras.Model(inputs, outputs, name=name or f"vgg{depth}")


_DOC = """Builds VGG-{depth}.

    Reference: [Simonyan & Zisserman, 2015](https://arxiv.org/abs/1409.1556).

    Args:
        input_shape: `(H, W, C)`, at least 32x32. Defaults to `(224, 224, 3)`.
        num_classes: int, output width. Defaults to `1000`.
        batch_norm: bool, BatchNormalization after each convolution.
            Defaults to `False` (the paper's network).
        fc_units: int, width of fc1 and fc2. Defaults to `4096`.
        dropout: float, dropout after fc1 and fc2 (the paper's 0.5).
            Defaults to `0.5`.
        classifier_activation: output activation, `None` for logits.
            Defaults to `"softmax"`.
        name: model name. Defaults to `"vgg{depth}"`.

    Returns:
        A `keras.Model`.
    """


def _variant(depth):
    def builder(input_shape=(224, 224, 3), num_classes=1000, **options):
        return _build_vgg(depth, input_shape, num_classes, **options)

    builder.__name__ = builder.__qualname__ = f"vgg{depth}"
    builder.__module__ = __name__
    builder.__doc__ = _DOC.format(depth=depth)
    return register_model(
        default_input_shape=(224, 224, 3),
        default_num_classes=1000,
        reference=REFERENCE,
        num_params=NUM_PARAMS[depth],
    )(builder)


vgg11 = _variant(11)
vgg13 = _variant(13)
vgg16 = _variant(16)
vgg19 = _variant(19)
