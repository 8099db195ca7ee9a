import numpy as np

from kerascnn import models
from kerascnn.layers import LocalResponseNormalization
from tests.helpers import assert_round_trip_in_fresh_process, run_model_test


def test_alexnet_single_tower_has_62378344_parameters():
    model = models.build("alexnet", input_shape=(227, 227, 3), num_classes=1000)
    assert model.count_params() == 62_378_344
    assert model.get_layer("conv1").output.shape[1:] == (55, 55, 96)
    assert model.get_layer("pool5").output.shape[1:] == (6, 6, 256)
    assert isinstance(model.get_layer("lrn1"), LocalResponseNormalization)
    assert isinstance(model.get_layer("lrn2"), LocalResponseNormalization)


def test_small_inputs_use_the_small_stem():
    model = models.build(
        "alexnet", input_shape=(32, 32, 3), num_classes=10, fc_units=32
    )
    assert model.get_layer("conv1").kernel_size == (5, 5)
    assert model.get_layer("pool5").output.shape[1:] == (4, 4, 256)
    run_model_test(model, (32, 32, 3), 10)


def test_alexnet_saves_and_loads_in_a_fresh_process(tmp_path):
    model = models.build(
        "alexnet", input_shape=(32, 32, 3), num_classes=10, fc_units=32
    )
    x = np.random.default_rng(0).random((3, 32, 32, 3), dtype=np.float32)
    assert_round_trip_in_fresh_process(model, x, tmp_path)
