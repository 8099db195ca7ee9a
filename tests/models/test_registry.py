import keras
import pytest

from kerascnn import models
from kerascnn.errors import InvalidArgumentError, UnknownModelError

EXPECTED = [
    "alexnet",
    "lenet",
    "resnet18",
    "resnet20",
    "resnet32",
    "resnet34",
    "resnet44",
    "resnet50",
    "resnet56",
    "resnet101",
    "resnet110",
    "resnet152",
    "simple_convnet",
    "slot_tagger",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
]


def test_list_models_is_natural_sorted_and_complete():
    assert models.list_models() == EXPECTED
    assert models.list_models("vgg1*") == ["vgg11", "vgg13", "vgg16", "vgg19"]
    assert models.list_models(family="lenet") == ["lenet"]


@pytest.mark.parametrize(
    "name",
    [
        "alexnet",
        "lenet",
        "simple_convnet",
        "resnet18",
        "resnet20",
        "resnet110",
        "vgg11",
    ],
)
def test_registry_param_count_matches_a_real_build(name):
    info = models.get_model_info(name)
    assert models.build(name).count_params() == info.num_params


def test_alias_resolves():
    assert models.get_model_info("lenet5").name == "lenet"
    assert models.get_model_info("LeNet-5").name == "lenet"


def test_unknown_name_lists_known_ones():
    with pytest.raises(UnknownModelError) as e:
        models.build("resnet9000")
    message = str(e.value)
    assert "Unknown model 'resnet9000'" in message
    for name in ("lenet", "vgg16", "slot_tagger"):
        assert name in message


@pytest.mark.parametrize(
    "name, shape, minimum",
    [
        ("lenet", (20, 20, 1), 28),
        ("vgg16", (16, 16, 3), 32),
        ("resnet50", (31, 31, 3), 32),
        ("resnet20", (4, 4, 3), 8),
        ("alexnet", (4, 4, 3), 8),
    ],
)
def test_too_small_input_states_minimum(name, shape, minimum):
    with pytest.raises(
        InvalidArgumentError, match=f"at least {minimum}x{minimum}"
    ):
        models.build(name, input_shape=shape)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_classes": 0}, "num_classes"),
        ({"input_shape": (28, 28)}, "input_shape"),
        ({"variant": "fancy"}, "variant"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        models.build("lenet", **kwargs)


# Feature-map sizes the papers give for their inputs, by layer name.
PUBLISHED_SIZES = [
    # LeCun et al. (1998), Fig. 2: C1 28x28, S2 14x14, C3 10x10, S4 5x5.
    ("lenet", (32, 32, 1), {"c1_conv": 28, "s2_pool": 14, "c3_conv": 10,
                            "s4_pool": 5}),
    # Krizhevsky et al. (2012) on 227x227 (the paper's "224" does not
    # divide): 55x55 after conv1, 27 after pool1, 13 in conv3-5, 6 out.
    ("alexnet", (227, 227, 3), {"conv1": 55, "pool1": 27, "conv2": 27,
                                "pool2": 13, "conv5": 13, "pool5": 6}),
    # Simonyan and Zisserman (2015): five 2x2 pools take 224 to 7.
    ("vgg16", (224, 224, 3), {"block1_conv2": 224, "block1_pool": 112,
                              "block3_pool": 28, "block5_pool": 7}),
    # He et al. (2016), Sec. 4.2: maps of 32, 16 and 8 on CIFAR-10.
    ("resnet20", (32, 32, 3), {"conv2_block3_2_conv": 32,
                               "conv3_block1_1_conv": 16,
                               "conv4_block3_2_conv": 8}),
    # He et al. (2016), Table 1: conv1 112, conv2_x 56 ... conv5_x 7.
    ("resnet50", (224, 224, 3), {"conv1_conv": 112, "pool1_pool": 56,
                                 "conv3_block4_3_conv": 28,
                                 "conv4_block6_3_conv": 14,
                                 "conv5_block3_3_conv": 7}),
]  # fmt: skip


def _expected_size(layer, size):
    """(H + 2P - F) / S + 1 of one conv, pool or padding layer."""
    if isinstance(layer, keras.layers.ZeroPadding2D):
        (top, bottom), _ = layer.padding
        return size + top + bottom
    window = getattr(layer, "kernel_size", None) or layer.pool_size
    stride = layer.strides[0]
    if layer.padding == "same":
        return -(-size // stride)
    return (size - window[0]) // stride + 1


@pytest.mark.parametrize("name, input_shape, published", PUBLISHED_SIZES)
def test_registry_builds_follow_the_conv_arithmetic(
    name, input_shape, published
):
    """Every conv/pool/padding layer of the registry's build obeys the
    output-size formula, and the named maps have the papers' sizes."""
    options = {"fc_units": 16} if name in ("alexnet", "vgg16") else {}
    model = models.build(name, input_shape=input_shape, **options)
    kinds = (
        keras.layers.Conv2D,
        keras.layers.MaxPooling2D,
        keras.layers.AveragePooling2D,
        keras.layers.ZeroPadding2D,
    )
    checked = 0
    for layer in model.layers:
        if not isinstance(layer, kinds):
            continue
        size_in, size_out = layer.input.shape[1], layer.output.shape[1]
        assert size_out == _expected_size(layer, size_in), layer.name
        assert layer.output.shape[2] == size_out  # square maps
        checked += 1
    assert checked >= len(published)
    sizes = {n: model.get_layer(n).output.shape[1] for n in published}
    assert sizes == published


def test_keras_conv2d_is_the_worked_example():
    """The builders rely on Keras' Conv2D being a cross-correlation (no
    kernel flip) and on (H + 2P - F) / S + 1: the worked 3x3 * 2x2 example.
    """
    image = keras.ops.reshape(
        keras.ops.arange(9, dtype="float32"), (1, 3, 3, 1)
    )
    conv = keras.layers.Conv2D(1, 2, use_bias=False)
    conv.build((1, 3, 3, 1))
    kernel = keras.ops.reshape(
        keras.ops.convert_to_tensor([[0.0, 1.0], [2.0, 3.0]]), (2, 2, 1, 1)
    )
    conv.kernel.assign(kernel)
    out = keras.ops.convert_to_numpy(conv(image))[0, :, :, 0]
    assert out.tolist() == [[19.0, 25.0], [37.0, 43.0]]

    h, p, f, s = 5, 1, 3, 2
    assert (h + 2 * p - f) // s + 1 == 3
    padded = keras.layers.ZeroPadding2D(p)(keras.ops.ones((1, 5, 5, 1)))
    strided = keras.layers.Conv2D(1, f, strides=s)(padded)
    assert tuple(strided.shape) == (1, 3, 3, 1)
