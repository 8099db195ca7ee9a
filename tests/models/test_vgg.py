import keras

from kerascnn import models
from tests.helpers import run_model_test


def test_vgg16_matches_keras_applications_and_seed_table():
    model = models.build("vgg16")
    reference = keras.applications.VGG16(weights=None)
    assert model.count_params() == reference.count_params() == 138_357_544
    # The seed's torchsummary table stops before the last classifier layer.
    without_last = (
        model.count_params() - model.get_layer("predictions").count_params()
    )
    assert without_last == 134_260_544
    ours = {lyr.name for lyr in model.layers if lyr.weights}
    theirs = {lyr.name for lyr in reference.layers if lyr.weights}
    assert ours == theirs


def test_vgg_works_at_32x32_with_batch_norm():
    model = models.build(
        "vgg16",
        input_shape=(32, 32, 3),
        num_classes=10,
        batch_norm=True,
        fc_units=64,
    )
    assert model.get_layer("block5_pool").output.shape[1:] == (1, 1, 512)
    assert model.get_layer("block1_conv1_bn") is not None
    run_model_test(model, (32, 32, 3), 10)


def test_vgg_depths_count_convolutions():
    for depth, convs in ((11, 8), (13, 10), (16, 13), (19, 16)):
        model = models.build(
            f"vgg{depth}", input_shape=(32, 32, 3), num_classes=10, fc_units=8
        )
        n = sum(isinstance(lyr, keras.layers.Conv2D) for lyr in model.layers)
        assert n == convs
