"""The digits' `"affine"` augmentation: geometry, determinism, pipeline."""

import numpy as np
import pytest
import tensorflow as tf

from kerascnn.data import augment as aug
from kerascnn.data import load

SEED = tf.constant([3, 7], tf.int64)


def _dot(row, col, size=28):
    image = np.zeros((size, size, 1), np.float32)
    image[row, col] = 255.0
    return image


def _centre_of_mass(image):
    image = np.asarray(image, np.float64)[..., 0]
    rows, cols = np.indices(image.shape)
    total = image.sum()
    return (rows * image).sum() / total, (cols * image).sum() / total


def test_zero_ranges_are_the_identity():
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1))
    images = images.astype(np.uint8)
    out = aug.random_affine(images, SEED, rotation=0.0, scale=0.0, shift=0.0)
    assert out.dtype == tf.uint8
    np.testing.assert_array_equal(out.numpy(), images)


def test_a_shift_moves_a_dot_by_the_drawn_offset():
    images = np.stack([_dot(14, 14)] * 8)
    ranges = dict(rotation=0.0, scale=0.0, shift=0.1)
    out = aug.random_affine(images, SEED, **ranges).numpy()
    matrices = aug.affine_matrices(8, (28, 28), SEED, **ranges).numpy()
    for image, m in zip(out, matrices):
        # Output (x, y) reads input (x + a2, y + b2): the dot moves by -a2.
        row, col = _centre_of_mass(image)
        assert col == pytest.approx(14 - m[2], abs=1e-3)
        assert row == pytest.approx(14 - m[5], abs=1e-3)
        assert abs(m[2]) <= 2.8 + 1e-6 and abs(m[5]) <= 2.8 + 1e-6
    assert len({round(float(m[2]), 3) for m in matrices}) == 8  # per image


def test_a_rotation_turns_a_dot_about_the_centre():
    # A dot 8 px right of the centre (13.5, 13.5) lands on the circle
    # of radius 8, within 10 degrees of where it was.
    images = np.stack([_dot(13, 21) + _dot(14, 21)] * 16)
    out = aug.random_affine(
        images, SEED, rotation=10.0, scale=0.0, shift=0.0
    ).numpy()
    angles = []
    for image in out:
        row, col = _centre_of_mass(image)
        assert np.hypot(row - 13.5, col - 13.5) == pytest.approx(7.5, abs=0.2)
        angles.append(np.degrees(np.arctan2(row - 13.5, col - 13.5)))
    assert max(abs(a) for a in angles) <= 10.5
    assert np.std(angles) > 2  # they differ


def test_a_zoom_scales_the_distance_from_the_centre():
    images = np.stack([_dot(13, 23) + _dot(14, 23)] * 16)
    out = aug.random_affine(
        images, SEED, rotation=0.0, scale=0.1, shift=0.0
    ).numpy()
    radii = [np.hypot(*np.subtract(_centre_of_mass(i), 13.5)) for i in out]
    assert min(radii) >= 9.5 * 0.9 - 0.2 and max(radii) <= 9.5 * 1.1 + 0.2
    assert max(radii) - min(radii) > 0.3


def test_same_seed_same_images_other_seed_other_images():
    images = tf.constant(np.stack([_dot(10, 10), _dot(20, 5)]))
    first = aug.augment_images(images, "affine", SEED)
    again = aug.augment_images(images, "affine", SEED)
    other = aug.augment_images(images, "affine", tf.constant([4, 7], tf.int64))
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    assert not np.array_equal(first.numpy(), other.numpy())
    assert first.shape == images.shape and first.dtype == images.dtype


def test_mnist_pipeline_augments_only_training_and_is_seeded(data_dir):
    def first_batch(split, seed, augment):
        ds, info = load(
            "mnist", split, data_dir=data_dir, batch_size=32, limit=64,
            seed=seed, augment=augment, shuffle=False,
        )  # fmt: skip
        return next(iter(ds))[0].numpy(), info

    plain, _ = first_batch("train", 0, False)
    moved, info = first_batch("train", 0, "affine")
    again, _ = first_batch("train", 0, "affine")
    other, _ = first_batch("train", 1, "affine")
    assert info.augmentation == "affine"
    assert moved.shape == plain.shape == (32, 28, 28, 1)
    np.testing.assert_array_equal(moved, again)
    assert not np.array_equal(moved, plain) and not np.array_equal(moved, other)
    # Small moves: the ink stays (zoom and edges change it a little).
    ratio = moved.sum(axis=(1, 2, 3)) / plain.sum(axis=(1, 2, 3))
    assert np.all((ratio > 0.7) & (ratio < 1.35))
    _, test_info = first_batch("test", 0, False)
    assert test_info.augmentation is None


def test_an_unknown_recipe_is_refused():
    from kerascnn.errors import DataError

    with pytest.raises(DataError, match="affine"):
        aug.check_recipe("affin")
