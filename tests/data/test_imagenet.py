"""ImageNet style at 224 px: random-resized crops for training, the same
centre crop in evaluation, serving, predict and the exported signature;
the recipes and the offline ImageNet error."""

import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from kerascnn.config import recipe_for
from kerascnn.data import augment, load, preprocessing
from tests.data.test_streaming import cifar_folder, folder  # noqa: F401


def test_imagenet_style_crops_and_serving_match(folder, tmp_path):  # noqa: F811
    big = cifar_folder(
        Path(os.environ["KERASCNN_DATA_DIR"]), tmp_path / "big", 2, 200,
        fmt="PNG",
    )  # fmt: skip
    train, info = load(str(big), "train", batch_size=4, image_size=(160, 160))
    assert info.augmentation == augment.RANDOM_RESIZED_CROP
    assert info.preprocessing["mean"] == list(preprocessing.IMAGENET_MEAN)
    assert (
        info.preprocessing["center_crop"]
        == preprocessing.IMAGENET_CROP_FRACTION
    )
    assert "ImageNet-style" in info.storage
    x, _ = next(iter(train))
    assert x.shape == (4, 160, 160, 3)
    evals, info = load(str(big), "test", batch_size=4, image_size=(160, 160))
    assert info.augmentation is None
    x, _ = next(iter(evals))
    # Serving and predict: the centre crop + resize of the decoded file.
    first = sorted((big / "test" / "airplane").iterdir())[0].read_bytes()
    served = augment.serving_preprocess(first, info.preprocessing)
    np.testing.assert_allclose(served, x[0], atol=0.05)
    pixels = tf.io.decode_png(first)
    np.testing.assert_allclose(
        augment.preprocess_images(pixels, info.preprocessing), x[0],
        atol=0.05,
    )  # fmt: skip
    # The exported `predict_images` signature decodes the same way.
    from kerascnn.export.saved_model import make_image_decoder, make_normalizer

    decode_bytes = make_image_decoder((160, 160, 3), info.preprocessing[
        "center_crop"])  # fmt: skip
    exported = make_normalizer(info.preprocessing)(
        decode_bytes(tf.constant([first]))
    )
    np.testing.assert_allclose(exported[0], x[0], atol=0.05)
    # A small folder keeps the plain style.
    _, plain = load(str(folder), "test")
    assert "center_crop" not in plain.preprocessing


def test_random_resized_crop_covers_8_to_100_percent():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 100:] = 255  # right half white
    data = tf.io.encode_png(image)
    means = []
    for s in range(40):
        out = augment.decode_random_resized_crop(
            data, [32, 32], 3, tf.constant([s, 1])
        )
        assert out.shape == (32, 32, 3) and out.dtype == tf.uint8
        means.append(float(tf.reduce_mean(tf.cast(out, tf.float32))))
    # Crops land on black, white and both halves (different windows).
    assert min(means) < 10 and max(means) > 245
    assert any(50 < m < 200 for m in means)
    center = augment.decode_center_crop(data, [32, 32], 3)
    # Centre 87.5% of the shorter side (88 px) straddles both halves.
    assert 100 < float(tf.reduce_mean(tf.cast(center, tf.float32))) < 155


@pytest.mark.parametrize(
    "model, batch, lr, decay, epochs",
    [
        ("resnet50", 64, 0.1 * 64 / 256, 1e-4, 90),
        ("resnet18", 256, 0.1, 1e-4, 90),
        ("vgg16", 64, 0.01 * 64 / 256, 5e-4, 74),
        ("alexnet", 128, 0.01, 5e-4, 90),
    ],
)
def test_imagenet_recipes_for_a_folder(model, batch, lr, decay, epochs):
    kwargs = {"batch_size": batch} if batch == 256 else {}
    config = recipe_for(model, dataset="/data/imagenet", **kwargs)
    assert config.input_shape == (224, 224, 3)
    assert (config.optimizer, config.momentum) == ("sgd", 0.9)
    assert config.batch_size == batch and config.epochs == epochs
    assert config.learning_rate == pytest.approx(lr)
    assert config.weight_decay == decay
    # The small built-in sets keep their recipes.
    assert recipe_for(model, dataset="cifar10").input_shape is None
    assert recipe_for("vgg16").dataset == "cifar10"


def test_resnet_without_a_dataset_says_imagenet_is_offline(runner, tmp_path):
    from cli.main import cli

    result = runner.invoke(
        cli, ["fit", "resnet50", "--run-dir", str(tmp_path / "run")]
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "Error: ImageNet cannot be downloaded here (it is not downloadable "
        "offline, and its licence needs a manual download). Point --dataset "
        "at a local copy: an image folder <root>/train/<class>/*.JPEG (plus "
        "val/ or test/), or shards made from it with `kerascnn data convert "
        "ROOT OUT_DIR`. Example: kerascnn fit resnet50 --dataset "
        "/data/imagenet"
    )
    assert not (tmp_path / "run").exists()
