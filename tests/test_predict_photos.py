"""`predict` reads files as `fit` does, and helps with the photos people
try first: a digit drawn dark on white paper shown to an MNIST model is
inverted (and says so); an image file given to the slot tagger is
refused instead of tagged as words."""

import numpy as np
import pytest

from kerascnn.data import images
from kerascnn.errors import DataError
from kerascnn.predict import predict_files, read_image, tag_utterances
from tests.helpers import save_run


def _png(pixels, path):
    from PIL import Image

    Image.fromarray(pixels).save(path)
    return str(path)


def _run(tmp_path, dataset, shape, seed=0):
    import keras

    from kerascnn import models
    from kerascnn.data.preprocessing import make_preprocessing
    from kerascnn.metadata import ModelMetadata

    keras.utils.set_random_seed(seed)
    model = models.build("lenet", input_shape=shape, num_classes=10)
    meta = ModelMetadata(
        model="lenet", dataset=dataset, input_shape=shape,
        class_names=[str(i) for i in range(10)],
        preprocessing=make_preprocessing(shape[2], shape[:2]),
    )  # fmt: skip
    return save_run(model, meta, tmp_path / dataset.strip("/"))


@pytest.fixture(scope="module")
def digit(data_dir):
    from kerascnn.data import sources

    raw = sources.read("mnist", "test", data_dir)
    return raw.images[0, :, :, 0]  # a 7, light on dark


def test_a_dark_on_light_digit_is_inverted_for_an_mnist_model(digit, tmp_path):
    run = _run(tmp_path, "mnist", (28, 28, 1))
    light = _png(digit, tmp_path / "light_on_dark.png")
    paper = _png(255 - digit, tmp_path / "dark_on_paper.png")
    as_trained, inverted = predict_files(run, [light, paper], top_k=10)
    assert "note" not in as_trained
    assert inverted["note"] == images.INVERTED_NOTE
    assert inverted["top_k"] == as_trained["top_k"]  # the same pixels


def test_photo_models_are_not_inverted(digit, tmp_path):
    run = _run(tmp_path, "/home/me/photos", (28, 28, 1))
    (result,) = predict_files(run, [_png(255 - digit, tmp_path / "p.png")])
    assert "note" not in result


def test_read_image_converts_to_the_models_shape(tmp_path):
    rgba = np.zeros((50, 70, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :35, 3] = 255  # the right half transparent: white
    path = _png(rgba, tmp_path / "half.png")
    grey = read_image(path, (10, 14, 1))
    assert grey.shape == (10, 14, 1) and grey.dtype == np.uint8
    assert grey[:, :6].max() < 100 and grey[:, 8:].min() == 255
    assert read_image(path).shape == (50, 70, 3)  # its own size, RGB


def test_the_tagger_refuses_image_files(digit, tmp_path):
    path = _png(digit, tmp_path / "seven.png")
    with pytest.raises(DataError, match="takes text, not image files"):
        tag_utterances(str(tmp_path), ["flights to boston", path])
