"""LeNet-5 (LeCun, Bottou, Bengio and Haffner, 1998).

C1 conv 6@5x5 - S2 subsample 2 - C3 conv 16@5x5 - S4 subsample 2 -
C5 dense 120 - F6 dense 84 - output num_classes: 61,706 parameters on
32x32x1 (the paper's input) or on 28x28x1 with C1 padded to keep 28x28.

Two variants:

* `"modern"` (default): ReLU and max pooling. It trains faster and more
  reliably with Adam and reaches the paper's 0.95% MNIST error within a few
  epochs, which is what users of `kerascnn fit lenet` want.
* `"classic"`: tanh and average-pool subsampling, as in the paper. The
  paper's S-layers also have a trainable gain and bias per map, C3 uses a
  sparse connection table and the output is an RBF layer; like most
  re-implementations we keep the layer sizes and drop those details, so
  both variants have the same 61,706 parameters.
"""

import keras

from kerascnn.models import _validation as v
from kerascnn.models.registry import register_model

REFERENCE = (
    "LeCun et al. (1998), Gradient-based learning applied to document "
    "recognition (http://yann.lecun.com/exdb/publis/pdf/lecun-01a.pdf)"
)
VARIANTS = {
    "modern": {"activation": "relu", "pool": keras.layers.MaxPooling2D},
    "classic": {"activation": "tanh", "pool": keras.layers.AveragePooling2D},
}


@register_model(
    default_input_shape=(28, 28, 1),
    default_num_classes=10,
    reference=REFERENCE,
    aliases=("lenet5", "lenet_5"),
    num_params=61_706,
)
def lenet(
    input_shape=(28, 28, 1),
    num_classes=10,
    variant="modern",
    activation=None,
    classifier_activation="softmax",
    name="lenet",
):
    """Builds LeNet-5.

    Reference: [LeCun et al., 1998](
    http://yann.lecun.com/exdb/publis/pdf/lecun-01a.pdf).

    C1 uses `"same"` padding when the input is smaller than 32x32, so a 28x28
    MNIST digit keeps the paper's 5x5x16 feature map before C5.

    Args:
        input_shape: `(H, W, C)`, at least 28x28. Defaults to `(28, 28, 1)`.
        num_classes: int, width of the output layer. Defaults to `10`.
        variant: `"modern"` (ReLU, max pooling) or `"classic"` (tanh,
            average pooling). Defaults to `"modern"`.
        activation: overrides the variant's hidden activation, e.g.
            `"sigmoid"`. Defaults to `None` (the variant's).
        classifier_activation: output activation, `None` for logits.
            Defaults to `"softmax"`.
        name: model name. Defaults to `"lenet"`.

    Returns:
        A `keras.Model`.

    Example:
        >>> lenet(input_shape=(32, 32, 1)).count_params()
        61706
    """
    v.check_choice("variant", variant, tuple(VARIANTS))
    v.check_positive_int("num_classes", num_classes)
    v.check_image_shape("lenet", input_shape, 28)
    activation = activation or VARIANTS[variant]["activation"]
    pool = VARIANTS[variant]["pool"]
    c1_padding = "same" if min(input_shape[:2]) < 32 else "valid"

    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Conv2D(
        6, 5, padding=c1_padding, activation=activation, name="c1_conv"
    )(inputs)
    x = pool(2, name="s2_pool")(x)
    x = keras.layers.Conv2D(16, 5, activation=activation, name="c3_conv")(x)
    x = pool(2, name="s4_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(120, activation=activation, name="c5_fc")(x)
    x = keras.layers.Dense(84, activation=activation, name="f6_fc")(x)
    outputs = keras.layers.Dense(
        num_classes,
        activation=classifier_activation,
        name="predictions",
        dtype="float32",  # float32 softmax under mixed precision
    )(x)
    return keras.Model(inputs, outputs, name=name)
