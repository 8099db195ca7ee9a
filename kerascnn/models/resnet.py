"""ResNet (He, Zhang, Ren and Sun, 2016): ImageNet and CIFAR families.

ImageNet family (section 3.4, Table 1): a 7x7/2 stem and 3x3/2 max pool,
four stages (64, 128, 256, 512 filters; layer names `conv2`..`conv5`),
global average pooling and a dense classifier.

* `resnet18`, `resnet34`: basic blocks (two 3x3 convolutions) without
  convolution biases, since BatchNormalization follows every convolution.
  At 224x224x3/1000 they have 11,689,512 and 21,797,672 trainable
  parameters, the counts of the reference torchvision models.
* `resnet50`, `resnet101`, `resnet152`: bottleneck blocks (1x1, 3x3, 1x1
  with 4x expansion) laid out exactly as `keras.applications.ResNet50`
  (convolution biases, the stride on the first 1x1, the same layer names),
  so `resnet50` has the same 25,636,712 parameters and Keras' ImageNet
  weights load by layer name.

CIFAR family (section 4.2, Table 6): a 3x3 stem with 16 filters, three
stages of n basic blocks (16, 32, 64 filters), global average pooling and
a dense classifier; depth = 6n + 2 (20, 32, 44, 56, 110). `resnet20` has
about 0.27M parameters. When the shape changes the shortcut is a strided
1x1 convolution plus BN (`shortcut="projection"`, option B, the default,
272,474 trainable parameters) or the paper's parameter-free option A
(`shortcut="zero_pad"`: subsample and pad channels with zeros, 269,722).

BatchNormalization uses momentum 0.9 and epsilon 1e-5 (the paper's Torch
settings); Keras' default momentum of 0.99 leaves the moving statistics
stale after short runs. The layers are `FusedBatchNormalization`, Keras'
BatchNormalization with TensorFlow's fused kernel for training steps (same
weights and results, faster steps: see benchmarks/README.md).
"""

import keras

from kerascnn import validation as v
from kerascnn.layers import FusedBatchNormalization, ZeroPadShortcut
from kerascnn.models import head
from kerascnn.models.registry import register_model

REFERENCE = (
    "He et al. (2016), Deep residual learning for image recognition "
    "(https://arxiv.org/abs/1512.03385)"
)
IMAGENET_MIN_SIZE = 32
CIFAR_MIN_SIZE = 8
BN_KWARGS = {"momentum": 0.9, "epsilon": 1e-5}
# depth -> (block type, blocks per stage)
IMAGENET_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
IMAGENET_FILTERS = (64, 128, 256, 512)
CIFAR_DEPTHS = (20, 32, 44, 56, 110)
CIFAR_FILTERS = (16, 32, 64)
# Total parameters (BN moving statistics included) at the default input.
NUM_PARAMS = {
    18: 11_699_112,
    34: 21_814_696,
    50: 25_636_712,
    101: 44_707_176,
    152: 60_419_944,
    20: 274_042,
    32: 469_370,
    44: 664_698,
    56: 860_026,
    110: 1_739_002,
}


def _conv_bn(x, filters, kernel, strides, name, use_bias, relu=True,
             zero_gamma=False):  # fmt: skip
    padding = "valid" if kernel == 1 else "same"
    x = keras.layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)
    x = FusedBatchNormalization(
        name=f"{name}_bn",
        gamma_initializer="zeros" if zero_gamma else "ones",
        **BN_KWARGS,
    )(x)
    if relu:
        x = keras.layers.Activation("relu", name=f"{name}_relu")(x)
    return x


def basic_block(x, filters, strides, name, shortcut="projection",
                zero_init_residual=False):  # fmt: skip
    """Two 3x3 conv-BN pairs with an identity or adapted shortcut.

    `zero_init_residual`: the last BN's scale starts at 0, so the block
    starts as its shortcut (Goyal et al. 2017, sec. 5.1).
    """
    if strides != 1 or x.shape[-1] != filters:
        if shortcut == "zero_pad":
            residual = ZeroPadShortcut(filters, strides, name=f"{name}_0_pad")(
                x
            )
        else:
            residual = _conv_bn(
                x, filters, 1, strides, f"{name}_0", False, relu=False
            )
    else:
        residual = x
    y = _conv_bn(x, filters, 3, strides, f"{name}_1", False)
    y = _conv_bn(
        y, filters, 3, 1, f"{name}_2", False, relu=False,
        zero_gamma=zero_init_residual,
    )  # fmt: skip
    y = keras.layers.Add(name=f"{name}_add")([residual, y])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


def bottleneck_block(x, filters, strides, name, zero_init_residual=False):
    """1x1 reduce, 3x3, 1x1 expand (4x), as in keras.applications;
    `zero_init_residual` as `basic_block`."""
    if strides != 1 or x.shape[-1] != 4 * filters:
        residual = _conv_bn(
            x, 4 * filters, 1, strides, f"{name}_0", True, relu=False
        )
    else:
        residual = x
    y = _conv_bn(x, filters, 1, strides, f"{name}_1", True)
    y = _conv_bn(y, filters, 3, 1, f"{name}_2", True)
    y = _conv_bn(
        y, 4 * filters, 1, 1, f"{name}_3", True, relu=False,
        zero_gamma=zero_init_residual,
    )  # fmt: skip
    y = keras.layers.Add(name=f"{name}_add")([residual, y])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


def _head(x, inputs, num_classes, classifier_activation, name):
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = head.predictions(x, num_classes, classifier_activation)
    return keras.Model(inputs, outputs, name=name)


def imagenet_resnet(
    depth,
    input_shape=(224, 224, 3),
    num_classes=1000,
    classifier_activation="softmax",
    zero_init_residual=False,
    name=None,
):
    """Builds an ImageNet-family ResNet (`resnet18` ... `resnet152`).

    Reference: [He et al., 2016](https://arxiv.org/abs/1512.03385), Table 1.

    Args:
        depth: one of `IMAGENET_DEPTHS` (18, 34, 50, 101, 152).
        input_shape: `(H, W, C)`, at least 32x32. Defaults to `(224, 224, 3)`.
        num_classes: int, output width. Defaults to `1000`.
        classifier_activation: output activation, `None` for logits.
            Defaults to `"softmax"`.
        zero_init_residual: start the last batch-norm scale of every
            residual block at 0, so each block starts as its shortcut
            (Goyal et al. 2017). Defaults to `False` (the paper's ones).
        name: model name. Defaults to `"resnet<depth>"`.

    Returns:
        A `keras.Model`.
    """
    v.check_choice("depth", depth, tuple(IMAGENET_DEPTHS))
    v.check_choice("zero_init_residual", zero_init_residual, (False, True))
    v.check_positive_int("num_classes", num_classes)
    v.check_image_shape(f"resnet{depth}", input_shape, IMAGENET_MIN_SIZE)
    block_type, blocks_per_stage = IMAGENET_DEPTHS[depth]
    use_bias = block_type == "bottleneck"

    inputs = keras.Input(shape=input_shape, name="image")
    # === Stem ===
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = keras.layers.Conv2D(
        64,
        7,
        strides=2,
        use_bias=use_bias,
        kernel_initializer="he_normal",
        name="conv1_conv",
    )(x)
    x = FusedBatchNormalization(name="conv1_bn", **BN_KWARGS)(x)
    x = keras.layers.Activation("relu", name="conv1_relu")(x)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    # === Stages ===
    for stage, (filters, blocks) in enumerate(
        zip(IMAGENET_FILTERS, blocks_per_stage), start=2
    ):
        for block in range(1, blocks + 1):
            strides = 2 if block == 1 and stage > 2 else 1
            block_name = f"conv{stage}_block{block}"
            if block_type == "basic":
                x = basic_block(
                    x, filters, strides, block_name,
                    zero_init_residual=zero_init_residual,
                )  # fmt: skip
            else:
                x = bottleneck_block(
                    x, filters, strides, block_name, zero_init_residual
                )
    return _head(
        x, inputs, num_classes, classifier_activation, name or f"resnet{depth}"
    )


def cifar_resnet(
    depth,
    input_shape=(32, 32, 3),
    num_classes=10,
    shortcut="projection",
    classifier_activation="softmax",
    zero_init_residual=False,
    name=None,
):
    """Builds a CIFAR-family ResNet (`resnet20` ... `resnet110`).

    Reference: [He et al., 2016](https://arxiv.org/abs/1512.03385), sec. 4.2.

    Args:
        depth: one of `CIFAR_DEPTHS` (6n + 2: 20, 32, 44, 56, 110).
        input_shape: `(H, W, C)`, at least 8x8. Defaults to `(32, 32, 3)`.
        num_classes: int, output width. Defaults to `10`.
        shortcut: `"projection"` (1x1 conv + BN, option B) or `"zero_pad"`
            (option A, no parameters). Defaults to `"projection"`.
        classifier_activation: output activation, `None` for logits.
            Defaults to `"softmax"`.
        zero_init_residual: start the last batch-norm scale of every
            residual block at 0, so each block starts as its shortcut
            (Goyal et al. 2017). Defaults to `False` (the paper's ones).
        name: model name. Defaults to `"resnet<depth>"`.

    Returns:
        A `keras.Model`.
    """
    v.check_choice("depth", depth, CIFAR_DEPTHS)
    v.check_positive_int("num_classes", num_classes)
    v.check_choice("shortcut", shortcut, ("projection", "zero_pad"))
    v.check_choice("zero_init_residual", zero_init_residual, (False, True))
    v.check_image_shape(f"resnet{depth}", input_shape, CIFAR_MIN_SIZE)
    blocks = (depth - 2) // 6

    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv_bn(inputs, CIFAR_FILTERS[0], 3, 1, "conv1", False)
    for stage, filters in enumerate(CIFAR_FILTERS, start=2):
        for block in range(1, blocks + 1):
            strides = 2 if block == 1 and stage > 2 else 1
            x = basic_block(
                x, filters, strides, f"conv{stage}_block{block}", shortcut,
                zero_init_residual,
            )  # fmt: skip
    return _head(
        x, inputs, num_classes, classifier_activation, name or f"resnet{depth}"
    )


def _imagenet(builder):
    """Registers `resnet<depth>` for ImageNet-sized inputs (224x224, 1000)."""
    return register_model(
        default_input_shape=(224, 224, 3),
        default_num_classes=1000,
        reference=REFERENCE,
        num_params=NUM_PARAMS[int(builder.__name__[len("resnet") :])],
        min_input_shape=(IMAGENET_MIN_SIZE, IMAGENET_MIN_SIZE, 3),
    )(builder)


def _cifar(builder):
    """Registers `resnet<depth>` for CIFAR inputs (32x32, 10 classes)."""
    return register_model(
        default_input_shape=(32, 32, 3),
        default_num_classes=10,
        reference=REFERENCE,
        num_params=NUM_PARAMS[int(builder.__name__[len("resnet") :])],
        min_input_shape=(CIFAR_MIN_SIZE, CIFAR_MIN_SIZE, 3),
    )(builder)


# One function per variant, so `grep resnet20` finds it; the options are
# those of `imagenet_resnet` and `cifar_resnet`.


@_imagenet
def resnet18(input_shape=(224, 224, 3), num_classes=1000, **options):
    """ResNet-18 (basic blocks 2-2-2-2), He et al. (2016) Table 1."""
    return imagenet_resnet(18, input_shape, num_classes, **options)


@_imagenet
def resnet34(input_shape=(224, 224, 3), num_classes=1000, **options):
    """ResNet-34 (basic blocks 3-4-6-3), He et al. (2016) Table 1."""
    return imagenet_resnet(34, input_shape, num_classes, **options)


@_imagenet
def resnet50(input_shape=(224, 224, 3), num_classes=1000, **options):
    """ResNet-50 (bottlenecks 3-4-6-3), He et al. (2016) Table 1."""
    return imagenet_resnet(50, input_shape, num_classes, **options)


@_imagenet
def resnet101(input_shape=(224, 224, 3), num_classes=1000, **options):
    """ResNet-101 (bottlenecks 3-4-23-3), He et al. (2016) Table 1."""
    return imagenet_resnet(101, input_shape, num_classes, **options)


@_imagenet
def resnet152(input_shape=(224, 224, 3), num_classes=1000, **options):
    """ResNet-152 (bottlenecks 3-8-36-3), He et al. (2016) Table 1."""
    return imagenet_resnet(152, input_shape, num_classes, **options)


@_cifar
def resnet20(input_shape=(32, 32, 3), num_classes=10, **options):
    """ResNet-20 for CIFAR (3 blocks a stage), He et al. (2016) sec. 4.2."""
    return cifar_resnet(20, input_shape, num_classes, **options)


@_cifar
def resnet32(input_shape=(32, 32, 3), num_classes=10, **options):
    """ResNet-32 for CIFAR (5 blocks a stage), He et al. (2016) sec. 4.2."""
    return cifar_resnet(32, input_shape, num_classes, **options)


@_cifar
def resnet44(input_shape=(32, 32, 3), num_classes=10, **options):
    """ResNet-44 for CIFAR (7 blocks a stage), He et al. (2016) sec. 4.2."""
    return cifar_resnet(44, input_shape, num_classes, **options)


@_cifar
def resnet56(input_shape=(32, 32, 3), num_classes=10, **options):
    """ResNet-56 for CIFAR (9 blocks a stage), He et al. (2016) sec. 4.2."""
    return cifar_resnet(56, input_shape, num_classes, **options)


@_cifar
def resnet110(input_shape=(32, 32, 3), num_classes=10, **options):
    """ResNet-110 for CIFAR (18 blocks a stage), He et al. (2016) sec. 4.2."""
    return cifar_resnet(110, input_shape, num_classes, **options)
