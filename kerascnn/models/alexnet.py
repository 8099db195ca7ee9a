"""AlexNet (Krizhevsky, Sutskever and Hinton, 2012), single tower.

conv1 96@11x11/4 - LRN - maxpool 3/2 - conv2 256@5x5 - LRN - maxpool 3/2 -
conv3 384@3x3 - conv4 384@3x3 - conv5 256@3x3 - maxpool 3/2 -
fc6 4096 - dropout - fc7 4096 - dropout - fc8 num_classes.

The paper split conv2, conv4 and conv5 across two GPUs (grouped
convolutions); the single-tower form used by Caffe's "one weird trick"
model and torchvision connects every channel, giving 62,378,344 parameters
at 227x227x3 with 1000 classes. Pooling overlaps (3x3 windows, stride 2)
as in section 3.4.

Small inputs. The ImageNet stem (11x11 stride 4, valid) needs inputs of at
least 67x67. With `stem="auto"` (default) smaller inputs, e.g. 32x32
CIFAR images, get the `"small"` stem: conv1 is 5x5 stride 1 `"same"`, and
the pools use `"same"` padding, so 32x32 gives 16 -> 8 -> 4 spatial maps.
Every other layer is unchanged.
"""

import keras

from kerascnn.layers import LocalResponseNormalization
from kerascnn.models import _validation as v
from kerascnn.models.registry import register_model

REFERENCE = (
    "Krizhevsky et al. (2012), ImageNet classification with deep "
    "convolutional neural networks (https://papers.nips.cc/paper/"
    "4824-imagenet-classification-with-deep-convolutional-neural-networks)"
)
IMAGENET_STEM_MIN_SIZE = 67
SMALL_STEM_MIN_SIZE = 8
STEMS = {
    "imagenet": {
        "kernel": 11,
        "strides": 4,
        "padding": "valid",
        "pool": "valid",
    },
    "small": {"kernel": 5, "strides": 1, "padding": "same", "pool": "same"},
}


def _resolve_stem(stem, input_shape):
    v.check_choice("stem", stem, ("auto", *STEMS))
    if stem == "auto":
        small = min(input_shape[:2]) < IMAGENET_STEM_MIN_SIZE
        stem = "small" if small else "imagenet"
    min_size = (
        IMAGENET_STEM_MIN_SIZE if stem == "imagenet" else SMALL_STEM_MIN_SIZE
    )
    v.check_image_shape(f"alexnet (stem={stem!r})", input_shape, min_size)
    return stem


@register_model(
    default_input_shape=(227, 227, 3),
    default_num_classes=1000,
    reference=REFERENCE,
    num_params=62_378_344,
)
def alexnet(
    input_shape=(227, 227, 3),
    num_classes=1000,
    stem="auto",
    fc_units=4096,
    dropout=0.5,
    lrn=True,
    classifier_activation="softmax",
    name="alexnet",
):
    """Builds single-tower AlexNet with Local Response Normalization.

    Reference: [Krizhevsky et al., 2012](https://papers.nips.cc/paper/
    4824-imagenet-classification-with-deep-convolutional-neural-networks).

    Args:
        input_shape: `(H, W, C)`. Defaults to `(227, 227, 3)`.
        num_classes: int, output width. Defaults to `1000`.
        stem: `"imagenet"` (11x11/4; inputs >= 67x67), `"small"` (5x5/1
            for CIFAR-sized inputs, >= 8x8) or `"auto"` (picks by input
            size). Defaults to `"auto"`.
        fc_units: int, width of fc6 and fc7. Defaults to `4096`.
        dropout: float, dropout rate before fc7 and fc8. Defaults to `0.5`.
        lrn: bool, apply LRN after conv1 and conv2. Defaults to `True`.
        classifier_activation: output activation, `None` for logits.
            Defaults to `"softmax"`.
        name: model name. Defaults to `"alexnet"`.

    Returns:
        A `keras.Model`.
    """
    v.check_positive_int("num_classes", num_classes)
    v.check_positive_int("fc_units", fc_units)
    dropout = v.check_rate("dropout", dropout)
    stem = _resolve_stem(stem, input_shape)
    cfg = STEMS[stem]

    def pool(x, index):
        return keras.layers.MaxPooling2D(
            3, strides=2, padding=cfg["pool"], name=f"pool{index}"
        )(x)

    def conv(x, filters, kernel, index, **kwargs):
        return keras.layers.Conv2D(
            filters, kernel, activation="relu", name=f"conv{index}", **kwargs
        )(x)

    inputs = keras.Input(shape=input_shape, name="image")
    # === Feature extractor ===
    x = conv(
        inputs,
        96,
        cfg["kernel"],
        1,
        strides=cfg["strides"],
        padding=cfg["padding"],
    )
    if lrn:
        x = LocalResponseNormalization(name="lrn1")(x)
    x = pool(x, 1)
    x = conv(x, 256, 5, 2, padding="same")
    if lrn:
        x = LocalResponseNormalization(name="lrn2")(x)
    x = pool(x, 2)
    x = conv(x, 384, 3, 3, padding="same")
    x = conv(x, 384, 3, 4, padding="same")
    x = conv(x, 256, 3, 5, padding="same")
    x = pool(x, 5)
    # === Classifier ===
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(fc_units, activation="relu", name="fc6")(x)
    x = keras.layers.Dropout(dropout, name="drop6")(x)
    x = keras.layers.Dense(fc_units, activation="relu", name="fc7")(x)
    x = keras.layers.Dropout(dropout, name="drop7")(x)
    outputs = keras.layers.Dense(
        num_classes,
        activation=classifier_activation,
        name="predictions",
        dtype="float32",  # float32 softmax under mixed precision
    )(x)
    return keras.Model(inputs, outputs, name=name)
