"""Pretrained weights: keras.applications' ImageNet files (never
downloaded: built with `weights=None` and a fixed seed, saved where the
Keras cache keeps them), weights files and runs, and the errors."""

import glob
import os
import urllib.error

import keras
import numpy as np
import pytest

from kerascnn import models
from kerascnn.metadata import ModelMetadata
from kerascnn.models import weights as pretrained
from tests.helpers import save_run


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache that `keras.utils.get_file` reads."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    os.makedirs(tmp_path / "keras" / "models")
    return tmp_path / "keras"


def _cache_as_imagenet(app_model, name, include_top, keras_home, monkeypatch):
    """Saves `app_model` as keras.applications' weights file of `name`
    in the cache, with its md5 in the table (so nothing is fetched)."""
    from keras.src.utils.file_utils import hash_file

    file_name, _, _ = pretrained.imagenet_file(name, include_top)
    path = str(keras_home / "models" / file_name)
    app_model.save(path)  # a Keras-applications-layout .h5 (layer names)
    folder, hashes = pretrained.IMAGENET_WEIGHTS[name]
    md5 = hash_file(path, "md5")
    hashes = (md5, hashes[1]) if include_top else (hashes[0], md5)
    monkeypatch.setitem(pretrained.IMAGENET_WEIGHTS, name, (folder, hashes))


def _cifar_images(data_dir, size, n=2):
    from PIL import Image

    files = sorted(glob.glob(f"{data_dir}/cifar10/test/cat/*.jpg"))[:n]
    return np.stack([
        np.asarray(Image.open(f).convert("RGB").resize(size), np.float32)
        for f in files
    ])  # fmt: skip


def test_resnet50_imagenet_logits_match_keras_applications(
    data_dir, keras_home, monkeypatch
):
    keras.utils.set_random_seed(7)
    app = keras.applications.ResNet50(weights=None, classifier_activation=None)
    _cache_as_imagenet(app, "resnet50", True, keras_home, monkeypatch)
    zoo = models.build(
        "resnet50", classifier_activation=None, weights="imagenet"
    )
    x = _cifar_images(data_dir, (224, 224))
    expected = app.predict(
        keras.applications.resnet.preprocess_input(x.copy()), verbose=0
    )
    # The caffe BGR swap is folded into conv1: the zoo takes RGB - mean.
    spec = pretrained.IMAGENET_CAFFE_PREPROCESSING
    got = zoo.predict((x - np.float32(spec["mean"])) * spec["scale"], verbose=0)
    assert np.abs(expected).max() > 1.0  # real logits, not all zeros
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    assert zoo.get_layer("conv1_bn").epsilon == pytest.approx(1.001e-5)


def test_vgg16_imagenet_notop_features_match_keras_applications(
    data_dir, keras_home, monkeypatch
):
    keras.utils.set_random_seed(8)
    app = keras.applications.VGG16(weights=None, include_top=False)
    _cache_as_imagenet(app, "vgg16", False, keras_home, monkeypatch)
    # Other classes: the notop file, a new fc1/fc2/predictions head.
    zoo = models.build("vgg16", num_classes=3, weights="imagenet")
    features = keras.Model(zoo.input, zoo.get_layer("block5_pool").output)
    x = _cifar_images(data_dir, (224, 224))
    expected = app.predict(
        keras.applications.vgg16.preprocess_input(x.copy()), verbose=0
    )
    got = features.predict(x - np.float32(pretrained.CAFFE_MEAN_RGB), verbose=0)
    assert np.abs(expected).max() > 0.0
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-5)


def test_imagenet_offline_and_not_cached_is_one_line(keras_home, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(pretrained.WeightsError) as info:
        pretrained.fetch_imagenet("resnet101", include_top=False)
    message = str(info.value)
    assert "\n" not in message
    name = "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert os.path.join(str(keras_home), "models", name) in message
    assert "88cf7a10940856eca736dc7b7e228a21" in message
    assert f"keras-applications/resnet/{name}" in message


def test_imagenet_refused_for_a_model_without_imagenet_weights():
    with pytest.raises(pretrained.WeightsError, match="resnet20 has no Im"):
        models.build("resnet20", weights="imagenet")


@pytest.mark.parametrize(
    "value, match",
    [("weights.txt", "must be 'imagenet'"), ("nope.h5", "No such weights")],
)
def test_bad_weights_values(value, match):
    with pytest.raises(pretrained.WeightsError, match=match):
        models.build("resnet20", input_shape=(16, 16, 3), weights=value)


def _small(num_classes=3, depth=20, seed=0):
    keras.utils.set_random_seed(seed)
    return models.build(
        f"resnet{depth}", input_shape=(16, 16, 3), num_classes=num_classes
    )


def _backbone_equal(a, b):
    head = set(pretrained.head_layer_names(a))
    for layer in a.layers:
        if layer.weights and layer.name not in head:
            for x, y in zip(
                layer.get_weights(), b.get_layer(layer.name).get_weights()
            ):
                np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("suffix", [".keras", ".weights.h5", ".h5"])
def test_files_load_by_layer_with_a_new_head(tmp_path, suffix):
    source = _small(num_classes=3, seed=1)
    path = str(tmp_path / f"source{suffix}")
    if suffix == ".weights.h5":
        source.save_weights(path)
    else:
        source.save(path)
    same = _small(num_classes=3, seed=2)
    report = pretrained.load_weights(same, path)
    assert report.new == []
    x = np.random.RandomState(0).rand(2, 16, 16, 3).astype("float32")
    np.testing.assert_allclose(same(x), source(x), atol=1e-6)

    other = _small(num_classes=5, seed=2)
    before = other.get_layer("predictions").get_weights()
    report = pretrained.load_weights(other, path)
    assert report.new == ["predictions"]
    _backbone_equal(source, other)
    np.testing.assert_array_equal(
        other.get_layer("predictions").get_weights()[0], before[0]
    )
    assert "new: predictions" in report.describe()


def test_run_directory_gives_backbone_and_its_normalization(tmp_path):
    source = _small(num_classes=7, seed=3)
    spec = {"scale": 1 / 255, "mean": [0.5, 0.4, 0.3], "std": [0.2] * 3,
            "channels": 3, "image_size": [16, 16]}  # fmt: skip
    meta = ModelMetadata(
        model="resnet20",
        input_shape=(16, 16, 3),
        class_names=list("abcdefg"),
        preprocessing=spec,
    )
    run = save_run(source, meta, tmp_path / "run")
    model = models.build(
        "resnet20", input_shape=(16, 16, 3), num_classes=3, weights=run
    )
    _backbone_equal(source, model)
    assert pretrained.expected_normalization(run) == {
        "scale": 1 / 255, "mean": [0.5, 0.4, 0.3], "std": [0.2] * 3,
    }  # fmt: skip
    assert pretrained.expected_normalization(str(tmp_path / "x.h5")) is None


def test_weights_of_another_architecture_name_the_layers(tmp_path):
    path = str(tmp_path / "resnet32.keras")
    _small(depth=32).save(path)
    with pytest.raises(pretrained.WeightsError, match="another architecture"):
        pretrained.load_weights(_small(depth=20), path)
    # Same names, other shapes: the layer and both shapes are named.
    wide = models.build("resnet20", input_shape=(16, 16, 1), num_classes=3)
    path = str(tmp_path / "gray.keras")
    wide.save(path)
    with pytest.raises(pretrained.WeightsError) as info:
        pretrained.load_weights(_small(), path)
    assert "layer conv1_conv has weights of shapes [(3, 3, 1, 16)]" in str(
        info.value
    )


def test_the_weights_normalization_reaches_the_pipeline(data_dir, tmp_path):
    from PIL import Image

    from kerascnn import data

    for name in ("cat", "dog"):
        src = os.path.join(data_dir, "cifar10", "test", name)
        os.makedirs(tmp_path / "photos" / "train" / name)
        os.makedirs(tmp_path / "photos" / "test" / name)
        for f in sorted(os.listdir(src))[:2]:
            Image.open(os.path.join(src, f)).save(
                tmp_path / "photos" / "train" / name / f"{f[:-4]}.png"
            )
            Image.open(os.path.join(src, f)).save(
                tmp_path / "photos" / "test" / name / f"{f[:-4]}.png"
            )
    folder = str(tmp_path / "photos")
    spec = pretrained.expected_normalization("imagenet")
    ds, info = data.load(
        folder, "test", batch_size=4, shuffle=False, augment=False,
        normalization=spec,
    )  # fmt: skip
    assert info.preprocessing["mean"] == list(pretrained.CAFFE_MEAN_RGB)
    assert info.preprocessing["scale"] == 1.0
    x, _ = next(iter(ds))
    pixels = [
        np.asarray(Image.open(p), np.float32)
        for p in sorted(glob.glob(f"{folder}/test/*/*.png"))
    ]
    expected = np.stack(pixels) - np.float32(pretrained.CAFFE_MEAN_RGB)
    np.testing.assert_allclose(
        np.sort(x.numpy().ravel()), np.sort(expected.ravel()), atol=1e-4
    )
