"""Raw records -> tensors.

`sources` hands over raw records; this module turns them into uint8 pixel
tensors. IDX and TFDS records already are pixel arrays; image files are
checked cheaply up front (magic bytes) and then decoded once, in parallel
with `tf.io.decode_image`, into one in-memory uint8 array. A file that
fails to decode is reported by name (`DataError`) or, with
`skip_bad=True`, skipped and counted in a warning.
"""

import numpy as np

from kerascnn.data import sources
from kerascnn.errors import DataError

# Magic bytes of the formats tf.io.decode_image reads.
MAGIC = {
    b"\xff\xd8\xff": "jpeg",
    b"\x89PNG\r\n\x1a\n": "png",
    b"GIF87a": "gif",
    b"GIF89a": "gif",
    b"BM": "bmp",
}
DECODE_BATCH = 512


def sniff_format(path):
    """Returns `"jpeg"`, `"png"`, `"gif"`, `"bmp"` or `None` from the header."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    for magic, fmt in MAGIC.items():
        if head.startswith(magic):
            return fmt
    return None


def check_headers(paths, labels, skip_bad=False):
    """Drops (or reports) files whose first bytes are not an image.

    Args:
        paths: list of file paths.
        labels: int32 array aligned with `paths`.
        skip_bad: skip bad files with a warning instead of raising.

    Returns:
        `(paths, labels)` with bad files removed.

    Raises:
        DataError: the first non-image file, when `skip_bad` is False.
    """
    keep = []
    for i, path in enumerate(paths):
        if sniff_format(path) is not None:
            keep.append(i)
        elif not skip_bad:
            raise DataError(
                f"{path} is not an image file (expected JPEG, PNG, GIF or "
                "BMP data). Remove it or pass skip_bad=True."
            )
    sources.warn_skipped(len(paths) - len(keep), "that are not image files")
    return [paths[i] for i in keep], np.asarray(labels)[keep]


def decode_image_bytes(data, channels=0):
    """Decodes encoded JPEG/PNG/GIF/BMP bytes into a uint8 `(H, W, C)` tensor.

    Args:
        data: a scalar string tensor.
        channels: `0` keeps the file's channels; `1` or `3` converts.
    """
    import tensorflow as tf

    image = tf.io.decode_image(data, channels=channels, expand_animations=False)
    return tf.ensure_shape(image, [None, None, None])


def _native_shape(path):
    import tensorflow as tf

    try:
        image = decode_image_bytes(tf.io.read_file(path))
    except Exception:  # tf.errors.* for corrupt files.
        return None
    return tuple(int(d) for d in image.shape)


def _decode_fn(shape):
    import tensorflow as tf

    height, width, channels = shape

    def decode(index, path):
        image = decode_image_bytes(tf.io.read_file(path), channels)
        same = tf.reduce_all(tf.shape(image)[:2] == [height, width])
        image = tf.cond(
            same,
            lambda: image,
            lambda: tf.cast(
                tf.round(tf.image.resize(image, [height, width])), tf.uint8
            ),
        )
        return index, tf.ensure_shape(image, shape)

    return decode


def decode_files(paths, labels, skip_bad=False, image_size=None):
    """Decodes image files into one uint8 array, naming any bad file.

    Images whose size differs from the first one (or from `image_size`) are
    resized to it, so that they stack.

    Args:
        paths: list of file paths (headers already checked).
        labels: int32 labels aligned with `paths`.
        skip_bad: skip undecodable files with a warning instead of raising.
        image_size: `(H, W)` to decode to; default: the first image's size.

    Returns:
        `(images uint8 (N, H, W, C), labels int32 (N,))`.

    Raises:
        DataError: an undecodable file (named), when `skip_bad` is False.
    """
    import tensorflow as tf

    paths, labels = check_headers(paths, labels, skip_bad)
    if not paths:
        raise DataError("No readable image files were found.")
    shape = None
    for path in paths:
        shape = _native_shape(path)
        if shape is not None:
            break
        if not skip_bad:
            _raise_corrupt(path)
    if shape is None:
        raise DataError("None of the image files could be decoded.")
    if image_size is not None:
        shape = (int(image_size[0]), int(image_size[1]), shape[2])
    ds = tf.data.Dataset.from_tensor_slices(
        (np.arange(len(paths), dtype=np.int64), paths)
    )
    ds = ds.map(
        _decode_fn(shape), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    ).ignore_errors()  # fmt: skip
    images = np.empty((len(paths),) + shape, np.uint8)
    ok = np.zeros(len(paths), bool)
    for idx, batch in ds.batch(DECODE_BATCH).as_numpy_iterator():
        images[idx] = batch
        ok[idx] = True
    if not ok.all():
        bad = [paths[i] for i in np.flatnonzero(~ok)]
        if not skip_bad:
            _raise_corrupt(bad[0], len(bad))
        sources.warn_skipped(len(bad), f"that could not be decoded: {bad[:3]}")
        images, labels = images[ok], labels[ok]
    return images, np.asarray(labels, np.int32)


def _raise_corrupt(path, count=1):
    more = f" ({count - 1} more file(s) are bad too)" if count > 1 else ""
    raise DataError(
        f"Cannot decode image file {path}: it is corrupt or truncated{more}. "
        "Remove it or pass skip_bad=True."
    )
