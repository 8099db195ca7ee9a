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


def test_conv_arithmetic_matches_seed_example():
    """(H + 2P - F) / S + 1 and the worked 3x3 * 2x2 convolution."""
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
