import pytest

from kerascnn import models
from tests.helpers import run_model_test


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 1)])
@pytest.mark.parametrize("variant", ["modern", "classic"])
def test_lenet5_has_61706_parameters(shape, variant):
    model = models.build("lenet", input_shape=shape, variant=variant)
    assert model.count_params() == 61_706
    assert model.get_layer("c3_conv").output.shape[1:] == (10, 10, 16)
    assert model.get_layer("flatten").output.shape[1:] == (400,)


def test_variants_differ_in_activation_and_pooling():
    modern = models.build("lenet")
    classic = models.build("lenet", variant="classic")
    assert type(modern.get_layer("s2_pool")).__name__ == "MaxPooling2D"
    assert type(classic.get_layer("s2_pool")).__name__ == "AveragePooling2D"
    assert classic.get_layer("c1_conv").activation.__name__ == "tanh"
    sigmoid = models.build("lenet", variant="classic", activation="sigmoid")
    assert sigmoid.get_layer("c5_fc").activation.__name__ == "sigmoid"


def test_simple_convnet_has_433890_parameters():
    model = models.build("simple_convnet")
    assert model.count_params() == 433_890
    run_model_test(model, (28, 28, 1), 10)
