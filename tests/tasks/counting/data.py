"""The counting task's data: 0-4 white 2x2 squares on a black 16x16
image, labelled with their count."""

import numpy as np

SIZE = 16
MAX_COUNT = 4


def counting_images(n, seed):
    """`(images (n, 16, 16, 1) float32 in [0, 1], counts (n,) float32)`."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, SIZE, SIZE, 1), np.float32)
    counts = rng.integers(0, MAX_COUNT + 1, n)
    for image, count in zip(images, counts):
        cells = rng.choice(16, count, replace=False)  # a 4x4 grid of cells
        for cell in cells:
            r, c = divmod(int(cell), 4)
            image[4 * r + 1 : 4 * r + 3, 4 * c + 1 : 4 * c + 3] = 1.0
    return images, counts.astype(np.float32)


def count_accuracy(predicted, counts):
    """The share of images whose rounded predicted count is right."""
    return float(np.mean(np.round(predicted) == np.asarray(counts)))
