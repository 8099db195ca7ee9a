"""A PNG grid of examples with their labels, to eyeball a data set."""

import numpy as np

from kerascnn.data import pipeline
from kerascnn.errors import DataError

CELL_SCALE_MIN = 64  # small images are enlarged to at least this many pixels
LABEL_HEIGHT = 14


def denormalize(images, preprocessing):
    """Undoes `augment.preprocess_images`: float model input -> uint8."""
    x = np.asarray(images, np.float32)
    if preprocessing.get("mean") is not None:
        x = x * np.asarray(preprocessing["std"]) + np.asarray(
            preprocessing["mean"]
        )
    x = x / preprocessing["scale"]
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _cell(image, size):
    from PIL import Image

    if image.shape[-1] == 1:
        pil = Image.fromarray(image[..., 0], "L").convert("RGB")
    else:
        pil = Image.fromarray(image, "RGB")
    return pil.resize((size, size), Image.NEAREST)


def render_grid(images, labels, class_names, columns=8):
    """Returns a PIL image: a grid of uint8 images with label captions."""
    from PIL import Image, ImageDraw

    height, width = images.shape[1:3]
    size = max(CELL_SCALE_MIN, height, width)
    rows = -(-len(images) // columns)
    cols = min(columns, len(images))
    grid = Image.new(
        "RGB", (cols * size, rows * (size + LABEL_HEIGHT)), "white"
    )
    draw = ImageDraw.Draw(grid)
    for i, (image, label) in enumerate(zip(images, labels)):
        x, y = (i % columns) * size, (i // columns) * (size + LABEL_HEIGHT)
        grid.paste(_cell(image, size), (x, y))
        name = class_names[label] if label < len(class_names) else str(label)
        draw.text((x + 2, y + size + 1), name[:12], fill="black")
    return grid


def save_preview(name, out, *, split="train", count=32, data_dir=None,
                 augment=False, seed=0):  # fmt: skip
    """Writes a PNG grid of the first `count` examples of a data set.

    Args:
        name: anything `load` accepts (image data sets only).
        out: output PNG path.
        split: the split to show. Defaults to `"train"`.
        count: how many examples. Defaults to `32`.
        data_dir: see `load`.
        augment: show training augmentation. Defaults to `False`.
        seed: augmentation seed.

    Returns:
        The `DatasetInfo` of the previewed data.
    """
    if not isinstance(count, int) or count < 1:
        raise DataError(
            f"`count` must be a positive int. Received: count={count!r}"
        )
    # A picture of the data: files that do not decode are left out and
    # named in one notice, not a reason to stop.
    ds, info = pipeline.load(
        name, split, data_dir=data_dir, batch_size=count, shuffle=False,
        augment=augment, limit=count, seed=seed, skip_bad=True,
    )  # fmt: skip
    if info.task != pipeline.TASK_IMAGE:
        raise DataError(
            f"Preview draws images; {name!r} is a {info.task} data set."
        )
    images, labels = next(iter(ds))
    pixels = denormalize(images.numpy(), info.preprocessing)
    render_grid(pixels, labels.numpy(), info.class_names).save(out, "PNG")
    return info
