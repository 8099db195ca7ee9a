"""Image pipeline: normalization, augmentation, distribution, serving."""

import numpy as np
import pytest
import tensorflow as tf

from kerascnn.data import (
    DatasetInfo,
    augment,
    load,
    pipeline,
    preprocess_images,
    preprocessing,
    serving_preprocess,
)
from kerascnn.errors import DataError


def toy(n=16, size=8, channels=3):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8)
    return images, np.arange(n, dtype=np.int32) % 4


def test_mnist_batches(data_dir):
    ds, info = load("mnist", "train", data_dir=data_dir, batch_size=256)
    assert info.num_examples == 60000 and info.input_shape == (28, 28, 1)
    assert info.split_sizes == {"train": 60000, "test": 10000}
    x, y = next(iter(ds))
    assert x.dtype == tf.float32 and y.dtype == tf.int32
    assert x.shape == (256, 28, 28, 1)
    assert 0.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0
    assert info.augmentation == "none"
    assert len(ds) == 235  # ceil(60000 / 256)


def test_mnist_channels_and_resize(data_dir):
    ds, info = load(
        "mnist", "test", data_dir=data_dir, limit=8, batch_size=8,
        channels=3, image_size=(32, 32),
    )  # fmt: skip
    assert info.input_shape == (32, 32, 3) and info.num_examples == 8
    assert next(iter(ds))[0].shape == (8, 32, 32, 3)


def test_cifar10_augmentation_only_in_training(data_dir):
    kwargs = dict(data_dir=data_dir, limit=64, batch_size=64, shuffle=False)
    train, info = load("cifar10", "train", augment=True, **kwargs)
    evals, _ = load("cifar10", "train", augment=False, **kwargs)
    assert info.augmentation == "pad_crop_flip"
    assert info.preprocessing["mean"] == list(preprocessing.CIFAR10_MEAN)
    a1, y1 = next(iter(train))
    a2, _ = next(iter(train))  # a new epoch: new random draws
    e1, y2 = next(iter(evals))
    e2, _ = next(iter(evals))
    assert a1.shape == (64, 32, 32, 3)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(e1, e2)  # eval is deterministic
    assert not np.allclose(a1, e1) and not np.allclose(a1, a2)
    # Standardized: roughly zero mean.
    assert abs(float(tf.reduce_mean(e1))) < 0.5


def test_cifar10_test_split_default_no_augment(data_dir):
    _, info = load("cifar10", "test", data_dir=data_dir, limit=20)
    assert info.augmentation is None and info.num_examples == 20
    assert info.split_sizes["test"] == 10000


def test_seeded_shuffle_is_reproducible():
    images, labels = toy()
    spec = preprocessing.make_preprocessing(3, (8, 8))

    def order(seed):
        ds = pipeline.image_dataset(
            images, labels, spec, "flip", batch_size=4, shuffle=True, seed=seed
        )
        return np.concatenate([x.numpy() for x, _ in ds])

    np.testing.assert_array_equal(order(1), order(1))
    assert not np.array_equal(order(1), order(2))


def test_per_replica_batch_and_shard():
    images, labels = toy(n=16)
    spec = preprocessing.make_preprocessing(3, (8, 8))
    ctx = tf.distribute.InputContext(
        num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=4
    )
    ds = pipeline.image_dataset(
        images, labels, spec, None, batch_size=8, input_context=ctx
    )
    batches = [y.numpy().tolist() for _, y in ds]
    # global 8 / 4 replicas = 2 per replica; pipeline 1 of 2 gets odd ids.
    assert batches == [[1, 3], [1, 3], [1, 3], [1, 3]]
    opts = ds.options().experimental_distribute.auto_shard_policy
    assert opts == tf.data.experimental.AutoShardPolicy.OFF
    plain = pipeline.image_dataset(images, labels, spec, batch_size=8)
    assert (
        plain.options().experimental_distribute.auto_shard_policy
        == tf.data.experimental.AutoShardPolicy.DATA
    )


def test_pad_crop_and_flip_match_a_hand_computation():
    images = np.arange(2 * 6 * 6).reshape(2, 6, 6, 1)
    # Image 0: offset (row 0, col 8) of the 14x14 padded image, i.e. moved
    # down 4 and left 4: only its top-right 2x2 corner stays, bottom-left.
    # Image 1: offset (4, 3): moved right by one column.
    out = augment.pad_crop(images, tf.constant([[0, 4], [8, 3]]))
    first = np.zeros((6, 6), int)
    first[4:, :2] = [[4, 5], [10, 11]]
    second = np.zeros((6, 6), int)
    second[:, 1:] = images[1, :, :5, 0]
    np.testing.assert_array_equal(out[..., 0], [first, second])
    # Offset (PAD, PAD) is the identity.
    same = augment.pad_crop(images, tf.fill([2, 2], augment.PAD))
    np.testing.assert_array_equal(same, images)
    flipped = augment.flip(images, tf.constant([True, False]))
    np.testing.assert_array_equal(flipped[0, 0, :, 0], [5, 4, 3, 2, 1, 0])
    np.testing.assert_array_equal(flipped[1], images[1])


def _all_pad_crop_flips(image):
    """Every output pad-crop-flip may give for one image (81 x 2)."""
    pad = augment.PAD
    height, width = image.shape[:2]
    padded = np.pad(image, [(pad, pad), (pad, pad), (0, 0)])
    crops = [
        padded[r : r + height, c : c + width]
        for r in range(2 * pad + 1)
        for c in range(2 * pad + 1)
    ]
    return crops + [crop[:, ::-1] for crop in crops]


def test_pad_crop_flip_gives_a_shifted_or_mirrored_copy():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (8, 6, 6, 3)).astype("uint8")
    outs = [
        augment.augment_images(images, "pad_crop_flip", tf.constant([s, 7]))
        for s in range(3)
    ]
    for out in outs:
        assert out.shape == images.shape and out.dtype == images.dtype
        for image, got in zip(images, out.numpy()):
            candidates = _all_pad_crop_flips(image)
            assert any(np.array_equal(got, c) for c in candidates)
    # Random: the three seeds do not all give the same batch.
    assert not all(np.array_equal(outs[0], o) for o in outs[1:])
    single = augment.augment_images(images[0], "flip", tf.constant([3, 4]))
    assert single.numpy().tolist() in (
        images[0].tolist(),
        images[0][:, ::-1].tolist(),
    )
    with pytest.raises(DataError, match="recipe"):
        augment.check_recipe("mixup")


def test_preprocess_images_matches_pipeline_and_serving():
    images, labels = toy(n=4, size=32)
    spec = preprocessing.make_preprocessing(
        3, (32, 32), preprocessing.CIFAR10_MEAN, preprocessing.CIFAR10_STD
    )
    ds = pipeline.image_dataset(images, labels, spec, batch_size=4)
    x, _ = next(iter(ds))
    np.testing.assert_allclose(preprocess_images(images, spec), x, atol=1e-6)
    # Float raw pixels give the same result as uint8.
    np.testing.assert_allclose(
        preprocess_images(images.astype("float32"), spec), x, atol=1e-6
    )
    png = [tf.io.encode_png(im).numpy() for im in images]
    np.testing.assert_allclose(serving_preprocess(png, spec), x, atol=1e-5)
    np.testing.assert_allclose(
        serving_preprocess(png[0], spec), x[0], atol=1e-5
    )
    # Grayscale in, RGB model; different size in.
    gray = preprocess_images(np.zeros((1, 28, 28, 1), np.uint8), spec)
    assert gray.shape == (1, 32, 32, 3)


def test_dataset_info_round_trip():
    info = DatasetInfo(
        name="x", kind="images", source="here", split="train",
        num_examples=3, split_sizes={"train": 3}, input_shape=(8, 8, 3),
        num_classes=2, class_names=["a", "b"],
        preprocessing=preprocessing.make_preprocessing(3, (8, 8)),
    )  # fmt: skip
    again = DatasetInfo.from_json(info.to_json())
    assert again == info


def test_bad_arguments():
    with pytest.raises(DataError, match="batch_size=0"):
        load("mnist", batch_size=0)
    with pytest.raises(DataError, match="channels=2"):
        load("mnist", channels=2)


@pytest.mark.parametrize("image_size", [(0, 5), (32,), (32, 32, 3)])
def test_load_and_convert_refuse_a_bad_image_size_alike(tmp_path, image_size):
    from kerascnn.data.convert import convert

    expected = (
        "`image_size` must be (height, width) with positive ints. "
        f"Received: image_size={image_size!r}"
    )
    with pytest.raises(DataError) as loading:
        load("mnist", image_size=image_size)
    with pytest.raises(DataError) as converting:
        convert("mnist", str(tmp_path / "out"), image_size=image_size)
    assert str(loading.value) == str(converting.value) == expected
