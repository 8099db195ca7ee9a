"""Raw records -> tensors.

`sources` hands over raw records; this module turns them into uint8 pixel
tensors. IDX and TFDS records already are pixel arrays; image files are
checked cheaply up front (magic bytes), passed through
`images.normalized_bytes` (EXIF orientation, colour modes, alpha, WebP:
one policy for every command and the server) and then decoded once, in
parallel, into one in-memory uint8 array at the model's size
(`resize_pixels`). A file that fails to decode is reported by name
(`DataError`) or, with `skip_bad=True`, skipped and counted in one
`DataNotice` line.

Resize policy (`resize_pixels`, the one used by training, evaluation,
`predict` and the exported `predict_images` signature): an image of
another size is stretched to the model's `(H, W)` (the aspect ratio is
not kept) with bilinear interpolation, anti-aliased when shrinking
(`tf.image.resize(antialias=True)`), and rounded to uint8. JPEGs are
decoded with the accurate integer DCT, as Pillow decodes them. The
ImageNet style cuts the central fraction of the shorter side first
(`central_crop`); `decode_to_model_size` is the decode that serving,
`predict` and the exported signature use.

Streams decode one file at a time inside tf.data, where a decoding op
cannot say which file failed. `looks_complete` checks each file's bytes
in the graph first (a known header and the format's end marker: this
catches non-images and truncated files), and `assert_complete` fails with
the file's name, which `bad_file_error` turns back into a `DataError`.
"""

import contextlib
import re

from kerascnn.data import images as image_files
from kerascnn.data import progress, sources
from kerascnn.errors import BadFileError, DataError
from kerascnn.lazy import LazyModule

np = LazyModule("numpy")
tf = LazyModule("tensorflow")

# Magic bytes of the formats tf.io.decode_image reads.
MAGIC = {
    b"\xff\xd8\xff": "jpeg",
    b"\x89PNG\r\n\x1a\n": "png",
    b"GIF87a": "gif",
    b"GIF89a": "gif",
    b"BM": "bmp",
}
# What a bad file's message suggests (the CLI keeps the flag's words).
SKIP_HINT = (
    "Remove it, or pass skip_bad=True (--skip-bad) to skip and count such "
    "files."
)
DECODE_BATCH = 512
# Marks the streamed-file assertion, so the file can be named again.
BAD_FILE_MARKER = "kerascnn-bad-image-file:"
# Bytes at the end of a file searched for the format's end marker.
TAIL_BYTES = 64


def _format_of(head):
    for magic, fmt in MAGIC.items():
        if head.startswith(magic):
            return fmt
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


NOT_IMAGE = "it is empty or not JPEG, PNG, GIF, BMP or WebP data"


def header_problem(path):
    """Why the file at `path` cannot be read as an image, judged from its
    header alone (`NOT_IMAGE`, or its size past
    `images.MAX_IMAGE_PIXELS`), or `None`."""
    try:
        head = image_files.read_header(path)
    except OSError:
        return NOT_IMAGE
    if _format_of(head[:12]) is None:
        return NOT_IMAGE
    large = image_files.too_large(head)
    return f"it is {large}; shrink it" if large else None


def header_error(path, problem):
    """The `BadFileError` for a file `header_problem` refused."""
    return BadFileError(
        f"Cannot read image file {path}: {problem}. {SKIP_HINT}"
    )


def check_headers(paths, labels, skip_bad=False, what="image files"):
    """Drops (or reports) files whose first bytes are not an image, or
    whose header claims more than `images.MAX_IMAGE_PIXELS` pixels.

    Args:
        paths: list of file paths.
        labels: int32 array aligned with `paths`.
        skip_bad: skip bad files with a warning instead of raising.
        what: the files, as the progress line names them.

    Returns:
        `(paths, labels)` with bad files removed.

    Raises:
        DataError: the first bad file, when `skip_bad` is False.
    """
    keep, not_images, large = [], [], []
    with progress.counter(f"Checking {what}", len(paths), "files") as n:
        for i, path in enumerate(paths):
            problem = header_problem(path)
            if problem is None:
                keep.append(i)
            elif not skip_bad:
                raise header_error(path, problem)
            else:
                (not_images if problem == NOT_IMAGE else large).append(path)
            n.add()
    sources.warn_skipped(not_images, "that are empty or not image data")
    limit = image_files.MAX_IMAGE_PIXELS
    sources.warn_skipped(large, f"with more than {limit:,} pixels")
    return [paths[i] for i in keep], np.asarray(labels)[keep]


def decode_image_bytes(data, channels=0):
    """Decodes encoded JPEG/PNG/GIF/BMP bytes into a uint8 `(H, W, C)` tensor.

    JPEGs use the accurate integer DCT (Pillow's pixels, exactly); pass
    files through `images.normalized_bytes` first for the full policy.

    Args:
        data: a scalar string tensor.
        channels: `0` keeps the file's channels; `1` or `3` converts.
    """

    def jpeg():
        return tf.io.decode_jpeg(
            data, channels=channels, dct_method="INTEGER_ACCURATE"
        )

    def other():
        return tf.io.decode_image(
            data, channels=channels, expand_animations=False
        )

    image = tf.cond(is_jpeg(data), jpeg, other)
    if channels:
        return tf.ensure_shape(image, [None, None, channels])
    return tf.ensure_shape(image, [None, None, None])


def normalize_file_bytes(data, channels):
    """`images.normalized_bytes` of a scalar string tensor (tf.data)."""
    return image_files.normalize_tensor(data, channels or 3)


def resize_pixels(image, size):
    """The one resize policy (module docstring): uint8 `(H, W, C)` or
    `(B, H, W, C)` -> uint8 at `size` = `(H, W)`."""

    resized = tf.image.resize(image, size, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def convert_channels(images, channels):
    """Converts the last axis to `channels` (1 <-> 3; drops alpha)."""

    have = images.shape[-1]
    if have == 4:
        images, have = images[..., :3], 3
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return tf.image.grayscale_to_rgb(images)
    if have == 3 and channels == 1:
        return tf.image.rgb_to_grayscale(images)
    raise DataError(
        f"Cannot convert images with {have} channels to {channels}; "
        "supported: 1, 3 or 4 channels in, 1 or 3 out."
    )


def central_crop(images, fraction):
    """A centred square of `fraction` of the shorter side.

    Works on `(H, W, C)` or `(B, H, W, C)`. Resized to 224x224 afterwards
    it is "resize the shorter side to 256, center crop 224" with one
    resize instead of two.
    """

    shape = tf.shape(images)
    height, width = shape[-3], shape[-2]
    side = tf.cast(
        tf.round(fraction * tf.cast(tf.minimum(height, width), tf.float32)),
        tf.int32,
    )
    top = (height - side) // 2
    left = (width - side) // 2
    if images.shape.rank == 3:
        return images[top : top + side, left : left + side]
    return images[:, top : top + side, left : left + side]


def decode_to_model_size(data, shape, center_crop=None):
    """Encoded bytes -> float32 pixels `shape` = `(H, W, C)`, as serving,
    `predict` and the exported `predict_images` signature feed a model.

    An image of the model's size is kept as it is. Another size is
    resized by `resize_pixels` or, with `center_crop` (the ImageNet
    style's `preprocessing["center_crop"]`, e.g. 0.875), cut to the
    central `center_crop` of its shorter side (`central_crop`) and
    resized (bilinear), as in evaluation.

    Args:
        data: a scalar string tensor (JPEG, PNG, GIF or BMP bytes).
        shape: `(H, W, C)` of the model input.
        center_crop: a fraction, or `None` for a plain resize.
    """

    height, width, channels = shape
    image = decode_image_bytes(data, channels)

    def resized():
        if center_crop:
            cropped = central_crop(image, center_crop)
            return tf.image.resize(cropped, (height, width))
        return tf.cast(resize_pixels(image, (height, width)), tf.float32)

    same_size = tf.reduce_all(tf.equal(tf.shape(image)[:2], [height, width]))
    pixels = tf.cond(same_size, lambda: tf.cast(image, tf.float32), resized)
    return tf.ensure_shape(pixels, [height, width, channels])


def native_shape(path):
    """`(H, W, C)` of the image file at `path` as every command decodes it
    (`images.normalized_bytes`, at most 3 channels), or `None` when it
    does not decode."""
    if header_problem(path):  # not an image, or too large to decode
        return None
    try:
        with open(path, "rb") as f:
            data = f.read()
        channels = min(image_files.native_channels(data), 3)
        image = decode_image_bytes(image_files.normalized_bytes(data, channels))
    except Exception:  # tf.errors.* for corrupt files.
        return None
    return tuple(int(d) for d in image.shape)


def decode_to_shape(data, shape):
    """Encoded bytes -> uint8 `shape` = `(H, W, C)`, resized (bilinear,
    rounded) when the file has another size. The in-memory and the
    streamed paths both decode with it, so their pixels are equal."""
    return _resize_to(decode_image_bytes(data, shape[2]), shape)


def pixels_to_shape(image, shape):
    """A decoded uint8 image (static channels) -> `shape`, as
    `decode_to_shape` does (raw pixel shards); channels convert 1 <-> 3."""
    return _resize_to(convert_channels(image, shape[2]), shape)


def _resize_to(image, shape):

    height, width, _ = shape
    same = tf.reduce_all(tf.shape(image)[:2] == [height, width])
    image = tf.cond(
        same, lambda: image, lambda: resize_pixels(image, [height, width])
    )
    return tf.ensure_shape(image, shape)


def _decode_fn(shape):

    def decode(index, path):
        data = normalize_file_bytes(tf.io.read_file(path), shape[2])
        return index, decode_to_shape(data, shape)

    return decode


def decode_files(paths, labels, skip_bad=False, image_size=None,
                 what="images", channels=None):  # fmt: skip
    """Decodes image files into one uint8 array, naming any bad file.

    Images are resized to `image_size` (the model's; without it, the first
    image's size), so that they stack, and converted to the first image's
    channels (at most 3) or `channels`.

    Args:
        paths: list of file paths (headers already checked).
        labels: int32 labels aligned with `paths`.
        skip_bad: skip undecodable files with a warning instead of raising.
        image_size: `(H, W)` to decode to; default: the first image's size.
        what: the images, as the progress lines name them.
        channels: `1` or `3`; default: the first image's (at most 3).

    Returns:
        `(images uint8 (N, H, W, C), labels int32 (N,))`.

    Raises:
        DataError: an undecodable file (named), when `skip_bad` is False.
    """

    paths, labels = check_headers(paths, labels, skip_bad, what)
    if not paths:
        raise DataError("No readable image files were found.")
    shape = None
    for path in paths:
        shape = native_shape(path)
        if shape is not None:
            break
        if not skip_bad:
            raise_corrupt(path)
    if shape is None:
        raise DataError("None of the image files could be decoded.")
    if image_size is not None:
        shape = (int(image_size[0]), int(image_size[1]), shape[2])
    if channels:
        shape = shape[:2] + (int(channels),)
    ds = tf.data.Dataset.from_tensor_slices(
        (np.arange(len(paths), dtype=np.int64), paths)
    )
    ds = ds.map(
        _decode_fn(shape), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    ).ignore_errors()  # fmt: skip
    images = np.empty((len(paths),) + shape, np.uint8)
    ok = np.zeros(len(paths), bool)
    with progress.counter(
        f"Decoding {what} into memory", len(paths), "images"
    ) as count:
        for idx, batch in ds.batch(DECODE_BATCH).as_numpy_iterator():
            images[idx] = batch
            ok[idx] = True
            count.add(len(idx))
    if not ok.all():
        bad = [paths[i] for i in np.flatnonzero(~ok)]
        if not skip_bad:
            raise_corrupt(bad[0], len(bad))
        sources.warn_skipped(bad, "that could not be decoded")
        images, labels = images[ok], labels[ok]
    return images, np.asarray(labels, np.int32)


# ======================= Streams (in the graph) =======================


def _starts_with(data, magic):

    return tf.equal(tf.strings.substr(data, 0, len(magic)), magic)


def is_jpeg(data):
    """Whether encoded bytes (a scalar string tensor) start as a JPEG."""
    return _starts_with(data, b"\xff\xd8\xff")


def is_png(data):
    """Whether encoded bytes (a scalar string tensor) start as a PNG."""
    return _starts_with(data, b"\x89PNG\r\n\x1a\n")


def _tail(data):

    n = tf.strings.length(data)
    start = tf.maximum(n - TAIL_BYTES, 0)
    return tf.io.decode_raw(tf.strings.substr(data, start, n - start), tf.uint8)


def _contains(tail, marker):
    """Whether the uint8 vector `tail` contains the byte string `marker`."""

    k = len(marker)
    n = tf.shape(tail)[0]
    if_long = tf.ones([tf.maximum(n - k + 1, 0)], tf.bool)
    for i, byte in enumerate(marker):
        if_long &= tf.equal(tail[i : n - k + 1 + i], byte)
    return tf.reduce_any(if_long)


def looks_complete(data):
    """Cheap in-graph check of encoded image bytes (scalar string tensor).

    True for a JPEG, PNG, GIF or BMP header together with the format's end
    (JPEG's EOI marker or PNG's IEND chunk in the last `TAIL_BYTES`, GIF's
    trailer byte, BMP's declared size): non-images and truncated files
    fail it without decoding anything.
    """

    tail = _tail(data)
    length = tf.strings.length(data)

    def bmp_size_fits():
        size = tf.io.decode_raw(
            tf.strings.substr(data, 2, 4), tf.int32, little_endian=True
        )
        return tf.reduce_all(size <= length)

    checks = [
        (is_jpeg(data), lambda: _contains(tail, b"\xff\xd9")),
        (is_png(data), lambda: _contains(tail, b"IEND")),
        (_starts_with(data, b"GIF8"), lambda: _contains(tail[-1:], b";")),
        (_starts_with(data, b"BM") & (length >= 6), bmp_size_fits),
    ]  # fmt: skip
    ok = tf.constant(False)
    for is_format, complete in reversed(checks):
        ok = tf.cond(is_format, complete, lambda ok=ok: ok)
    return ok


def assert_complete(data, path):
    """`data` unchanged, or an error naming `path` when it is not an image."""

    check = tf.debugging.Assert(
        looks_complete(data), [tf.strings.join([BAD_FILE_MARKER, path])]
    )
    with tf.control_dependencies([check]):
        return tf.identity(data)


# What `fit` adds to a bad file's line: the run is not lost.
RESUME_HINT = "Training resumes from the last finished epoch."


@contextlib.contextmanager
def bad_files_named(then=RESUME_HINT):
    """Turns the TF error of `assert_complete` into its `DataError` (one
    line naming the file, then `then`) around code that iterates a
    stream (`fit`'s epochs)."""

    try:
        yield
    except tf.errors.InvalidArgumentError as e:
        named = bad_file_error(e, then)
        if named is None:
            raise
        raise named from None


def bad_file_error(error, then=""):
    """The `DataError` for a TF error raised by `assert_complete`, or
    `None` when `error` is something else."""
    text = getattr(error, "message", None) or str(error)
    found = re.search(
        re.escape(BAD_FILE_MARKER) + r"(.*?)'?\]?$", text, re.MULTILINE
    )
    if not found:
        return None
    path = found.group(1).strip()
    limit = image_files.MAX_IMAGE_PIXELS
    return BadFileError(
        f"Cannot decode image file {path}: it is not an image, it is "
        f"truncated or it has more than {limit:,} pixels. {SKIP_HINT} "
        f"{then}".strip()
    )


def raise_corrupt(path, count=1):
    """Raises the `DataError` naming the undecodable file `path` (and how
    many more are bad)."""
    more = f" ({count - 1} more file(s) are bad too)" if count > 1 else ""
    raise BadFileError(
        f"Cannot decode image file {path}: it is corrupt or truncated{more}. "
        f"{SKIP_HINT}"
    )
