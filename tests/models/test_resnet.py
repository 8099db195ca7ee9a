import keras
import numpy as np
import pytest

from kerascnn import models
from tests.helpers import (
    assert_round_trip_in_fresh_process,
    run_model_test,
    trainable_count,
)


@pytest.mark.parametrize(
    "name, expected", [("resnet18", 11_689_512), ("resnet34", 21_797_672)]
)
def test_basic_block_resnets_match_reference_counts(name, expected):
    # The reference (torchvision) counts trainable parameters; Keras' total
    # also holds BatchNormalization's moving mean and variance.
    assert trainable_count(models.build(name)) == expected


def test_resnet50_equals_keras_applications():
    model = models.build("resnet50")
    reference = keras.applications.ResNet50(weights=None)
    assert model.count_params() == reference.count_params() == 25_636_712
    ours = {lyr.name: lyr.count_params() for lyr in model.layers if lyr.weights}
    theirs = {
        lyr.name: lyr.count_params() for lyr in reference.layers if lyr.weights
    }
    assert ours == theirs


@pytest.mark.parametrize(
    "shortcut, expected", [("projection", 272_474), ("zero_pad", 269_722)]
)
def test_resnet20_is_about_027m(shortcut, expected):
    model = models.build("resnet20", shortcut=shortcut)
    assert 260_000 <= model.count_params() <= 280_000
    assert trainable_count(model) == expected
    run_model_test(model, (32, 32, 3), 10)


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_cifar_depth_is_6n_plus_2(depth):
    model = models.build(f"resnet{depth}", input_shape=(8, 8, 3))
    convs = sum(
        isinstance(lyr, keras.layers.Conv2D) and lyr.kernel_size == (3, 3)
        for lyr in model.layers
    )
    assert convs + 1 == depth  # 3x3 convolutions plus the dense layer


def test_zero_pad_resnet_saves_and_loads_in_a_fresh_process(tmp_path):
    model = models.build("resnet20", shortcut="zero_pad")
    x = np.random.default_rng(1).random((2, 32, 32, 3), dtype=np.float32)
    assert_round_trip_in_fresh_process(model, x, tmp_path, atol=1e-6)


@pytest.mark.parametrize("name", ["resnet20", "resnet50"])
def test_zero_init_residual_zeroes_only_each_blocks_last_bn_scale(name):
    import numpy as np

    from kerascnn import models

    shape = (32, 32, 3)
    plain = models.build(name, input_shape=shape, num_classes=4)
    zeroed = models.build(
        name, input_shape=shape, num_classes=4, zero_init_residual=True
    )
    last = "_2_bn" if name == "resnet20" else "_3_bn"
    names = [layer.name for layer in zeroed.layers]
    bns = [zeroed.get_layer(n) for n in names if n.endswith("_bn")]
    blocks = [n for n in names if n.endswith("_add")]
    zero = {bn.name for bn in bns if not np.any(bn.gamma.numpy())}
    assert zero == {b.replace("_add", last) for b in blocks}
    ones = [bn for bn in bns if bn.name not in zero]
    assert all(np.all(bn.gamma.numpy() == 1) for bn in ones)
    assert all(
        np.all(layer.gamma.numpy() == 1)
        for layer in plain.layers
        if layer.name.endswith("_bn")
    )
    assert zeroed.count_params() == plain.count_params()


def test_zero_init_residual_must_be_a_bool():
    from kerascnn import models
    from kerascnn.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="zero_init_residual"):
        models.build("resnet20", zero_init_residual="yes")
