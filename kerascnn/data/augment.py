"""Train and eval transforms, and the preprocessing that serving reuses.

Everything here works on whole batches (`(B, H, W, C)`) so the pipeline can
augment and normalize after batching, vectorized; single images
(`(H, W, C)`) are accepted too.

* `preprocess_images(images, preprocessing)`: uint8 or raw-pixel float
  images -> exactly what the model eats (channels, size, scale, mean/std).
  The eval pipeline, the train pipeline (after augmentation) and the
  exported serving graph all call it, so they cannot drift apart.
* `serving_preprocess(image_bytes, preprocessing)`: encoded JPEG/PNG bytes
  (scalar or batch of strings) -> the same model input.
* `augment_images(images, recipe, seed)`: training-only random transforms.
  Recipes: `"none"`, `"flip"`, `"pad_crop_flip"` (CIFAR: pad 4, random
  32x32 crop, horizontal flip), `"affine"` (digits: a small random
  rotation, scale and shift per image, `random_affine`).
* ImageNet style (per image, on the decoded file, before batching):
  `random_resized_crop` (training: a crop of 8-100% of the area with an
  aspect ratio in [3/4, 4/3], resized, then flipped) and `center_crop`
  (evaluation: the central 87.5% of the shorter side, resized, i.e.
  "resize to 256, center crop 224"), as torchvision, Keras-CV and TF
  Model Garden do.

The `preprocessing` dict is described in `kerascnn.data.preprocessing`.
"""

import math

from kerascnn.data.decode import (
    central_crop,
    convert_channels,
    decode_image_bytes,
    decode_to_model_size,
    is_jpeg,
)
from kerascnn.data.preprocessing import IMAGENET_CROP_FRACTION
from kerascnn.errors import DataError
from kerascnn.lazy import LazyModule

tf = LazyModule("tensorflow")

RANDOM_CROP_SCALE = (0.08, 1.0)
RANDOM_CROP_RATIO = (3 / 4, 4 / 3)
# Per-image recipe of the ImageNet style (applied while decoding).
RANDOM_RESIZED_CROP = "random_resized_crop_flip"
AFFINE = "affine"
RECIPES = ("none", "flip", "pad_crop_flip", AFFINE, RANDOM_RESIZED_CROP)
PAD = 4
# The `"affine"` recipe's ranges (chosen on MNIST's held-out last 5,000
# training images, docs/training.md): rotation in degrees, scale as a
# fraction of the size, shift as a fraction of the side.
AFFINE_ROTATION = 10.0
AFFINE_SCALE = 0.1
AFFINE_SHIFT = 0.1


def _spec(preprocessing):
    """Accepts a `DatasetInfo` or its `preprocessing` dict."""
    return getattr(preprocessing, "preprocessing", preprocessing)


def _batched(fn):
    """Lets a batch function accept a single `(H, W, C)` image too."""

    def wrapper(images, *args, **kwargs):

        images = tf.convert_to_tensor(images)
        if images.shape.rank == 3:
            return fn(images[None], *args, **kwargs)[0]
        return fn(images, *args, **kwargs)

    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = fn.__name__
    return wrapper


@_batched
def preprocess_images(images, preprocessing):
    """Turns raw pixel images into exactly what the model eats.

    Args:
        images: uint8 or float `(B, H, W, C)` or `(H, W, C)`; float values
            are raw pixel values in [0, 255], like uint8.
        preprocessing: `DatasetInfo.preprocessing` (or the `DatasetInfo`).

    Returns:
        float32 images `(B, H', W', C')` with the model's size, channels,
        scale and standardization.
    """

    spec = _spec(preprocessing)
    images = convert_channels(images, spec["channels"])
    height, width = spec["image_size"]
    if tuple(images.shape[1:3]) != (height, width):
        if spec.get("center_crop"):
            images = central_crop(images, spec["center_crop"])
        images = tf.image.resize(images, [height, width], antialias=True)
    images = tf.cast(images, tf.float32) * spec["scale"]
    if spec.get("mean") is not None:
        # Broadcast to a whole image first: the same values, but Eigen's
        # broadcast along a last axis of 3 is ~2x slower than along the
        # batch axis (half the cost of a 224 px input pipeline).
        shape = tf.shape(images)[1:]
        mean = tf.broadcast_to(tf.constant(spec["mean"], tf.float32), shape)
        std = tf.broadcast_to(tf.constant(spec["std"], tf.float32), shape)
        images = (images - mean) / std
    return images


def serving_preprocess(image_bytes, preprocessing):
    """Decodes encoded JPEG/PNG bytes and preprocesses them for the model.

    Args:
        image_bytes: a scalar string tensor or a `(B,)` string tensor.
        preprocessing: `DatasetInfo.preprocessing` (or the `DatasetInfo`).

    Returns:
        float32 `(H, W, C)` for a scalar, `(B, H, W, C)` for a batch.
    """

    spec = _spec(preprocessing)
    height, width = spec["image_size"]
    channels = spec["channels"]

    def one(data):
        return decode_to_model_size(
            data, (height, width, channels), spec.get("center_crop")
        )

    image_bytes = tf.convert_to_tensor(image_bytes, tf.string)
    if image_bytes.shape.rank == 0:
        return preprocess_images(one(image_bytes), spec)
    images = tf.map_fn(
        one,
        image_bytes,
        fn_output_signature=tf.TensorSpec(
            [height, width, channels], tf.float32
        ),
    )
    return preprocess_images(images, spec)


def _jpeg_or_decoded_crop(data, window, channels):
    """Decodes only `window` (y, x, h, w) of a JPEG; other formats are
    decoded whole, then cropped."""

    return tf.cond(
        is_jpeg(data),
        lambda: tf.image.decode_and_crop_jpeg(
            data, window, channels=channels, dct_method="INTEGER_ACCURATE"
        ),
        lambda: _crop(decode_image_bytes(data, channels), window),
    )


def _encoded_shape(data, channels):
    """`(H, W)` of encoded bytes: the JPEG header, else a full decode."""

    return tf.cond(
        is_jpeg(data),
        lambda: tf.io.extract_jpeg_shape(data)[:2],
        lambda: tf.shape(decode_image_bytes(data, channels))[:2],
    )


def _to_uint8(image):

    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def _random_resized_crop(hw, crop, size, channels, seed):
    """Samples the ImageNet training window of an `hw`-sized image, takes
    it with `crop(window)`, resizes to `size` and flips: the one sampler
    of encoded and raw-pixel inputs, so both get the same crops."""

    seeds = tf.random.experimental.stateless_split(seed, 2)
    begin, window_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.concat([hw, [channels]], 0),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seeds[0],
        min_object_covered=0.0,
        aspect_ratio_range=RANDOM_CROP_RATIO,
        area_range=RANDOM_CROP_SCALE,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    window = tf.stack([begin[0], begin[1], window_size[0], window_size[1]])
    image = _to_uint8(tf.image.resize(crop(window), size))
    # Flipped as uint8: the same pixels, a quarter of the bytes to move.
    image = tf.image.stateless_random_flip_left_right(image, seeds[1])
    return tf.ensure_shape(image, [size[0], size[1], channels])


def decode_random_resized_crop(data, size, channels, seed):
    """Training, ImageNet style: encoded bytes -> uint8 random crop, flip.

    A window of 8-100% of the area and aspect ratio 3/4-4/3 (Szegedy et
    al. 2015, as torchvision's `RandomResizedCrop`), the whole image when
    ten tries find none; only the window of a JPEG is decoded. Then a
    bilinear resize to `size` and a horizontal flip with p = 0.5.
    """
    return _random_resized_crop(
        _encoded_shape(data, channels),
        lambda window: _jpeg_or_decoded_crop(data, window, channels),
        size, channels, seed,
    )  # fmt: skip


def pixels_random_resized_crop(image, size, seed):
    """`decode_random_resized_crop` of a decoded uint8 `(H, W, C)` image
    (raw-pixel shards): the same windows for the same seed, cut from the
    array."""

    return _random_resized_crop(
        tf.shape(image)[:2], lambda window: _crop(image, window),
        size, image.shape[-1], seed,
    )  # fmt: skip


def _crop(image, window):

    return tf.image.crop_to_bounding_box(
        image, window[0], window[1], window[2], window[3]
    )


def _center_window(hw, fraction):

    side = tf.cast(
        tf.round(fraction * tf.cast(tf.reduce_min(hw), tf.float32)), tf.int32
    )
    return tf.stack([(hw[0] - side) // 2, (hw[1] - side) // 2, side, side])


def decode_center_crop(data, size, channels, fraction=IMAGENET_CROP_FRACTION):
    """Evaluation, ImageNet style: encoded bytes -> uint8 centre crop.

    The central `fraction` of the shorter side (only that window of a
    JPEG is decoded), resized to `size`; the same as `central_crop` +
    resize on a decoded image, which serving and predict use.
    """

    window = _center_window(_encoded_shape(data, channels), fraction)
    image = tf.image.resize(_jpeg_or_decoded_crop(data, window, channels), size)
    return tf.ensure_shape(_to_uint8(image), [size[0], size[1], channels])


def pixels_center_crop(image, size, fraction=IMAGENET_CROP_FRACTION):
    """`decode_center_crop` of a decoded uint8 `(H, W, C)` image."""

    window = _center_window(tf.shape(image)[:2], fraction)
    resized = tf.image.resize(_crop(image, window), size)
    return tf.ensure_shape(
        _to_uint8(resized), [size[0], size[1], image.shape[-1]]
    )


def check_recipe(recipe):
    """Raises `DataError` for an unknown augmentation recipe."""
    if recipe not in RECIPES:
        raise DataError(
            f"`augment` recipe must be one of {RECIPES}. Received: {recipe!r}"
        )
    return recipe


def flip_mask(batch, seed):
    """A random boolean per image: flip it horizontally (p = 0.5)."""

    return tf.random.stateless_uniform([batch], seed) < 0.5


def flip(images, mask):
    """Mirrors the images of a batch whose `mask` entry is true."""

    return tf.where(mask[:, None, None, None], tf.reverse(images, [2]), images)


def crop_offsets(batch, seed):
    """Random crop offsets, int32 `(2, batch)`: rows, then columns, each in
    `[0, 2 * PAD]` (`PAD`: the centre, i.e. no shift)."""

    return tf.random.stateless_uniform(
        [2, batch], seed, minval=0, maxval=2 * PAD + 1, dtype=tf.int32
    )


def pad_crop(images, offsets):
    """Zero-pads a batch by `PAD` and crops each image back to its size,
    its top-left corner at `offsets[:, i]` of the padded image."""

    height, width = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [PAD, PAD], [PAD, PAD], [0, 0]])
    rows = offsets[0][:, None] + tf.range(height)[None]
    cols = offsets[1][:, None] + tf.range(width)[None]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def affine_matrices(batch, size, seed, rotation=AFFINE_ROTATION,
                    scale=AFFINE_SCALE, shift=AFFINE_SHIFT):  # fmt: skip
    """Random output-to-input maps for `ImageProjectiveTransformV3`.

    Per image: an angle uniform in `[-rotation, rotation]` degrees, a zoom
    uniform in `[1 - scale, 1 + scale]` and a shift per axis uniform in
    `[-shift, shift]` of the side, about the image centre.

    Args:
        batch: number of images (int or scalar tensor).
        size: `(H, W)` of the images.
        seed: a stateless seed, int tensor of shape `(2,)`.

    Returns:
        float32 `(batch, 8)`: rows `[a0, a1, a2, b0, b1, b2, 0, 0]`, mapping
        an output pixel `(x, y)` to the input pixel `(a0 x + a1 y + a2,
        b0 x + b1 y + b2)`.
    """

    seeds = tf.random.experimental.stateless_split(seed, 3)
    angle = tf.random.stateless_uniform(
        [batch], seeds[0], -rotation, rotation
    ) * (math.pi / 180.0)
    zoom = tf.random.stateless_uniform([batch], seeds[1], 1 - scale, 1 + scale)
    height, width = float(size[0]), float(size[1])
    moves = tf.random.stateless_uniform([2, batch], seeds[2], -shift, shift)
    dx, dy = moves[0] * width, moves[1] * height
    # Output pixel -> input pixel: the inverse of "rotate by `angle`, zoom
    # by `zoom` about the centre, then shift by (dx, dy)".
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    cx, cy = (width - 1) / 2, (height - 1) / 2
    a2 = cx - cos * (cx + dx) - sin * (cy + dy)
    b2 = cy + sin * (cx + dx) - cos * (cy + dy)
    zeros = tf.zeros_like(angle)
    return tf.stack([cos, sin, a2, -sin, cos, b2, zeros, zeros], axis=1)


def random_affine(images, seed, **ranges):
    """A random rotation, zoom and shift of each image (bilinear, zero
    fill); `ranges` as `affine_matrices`. Same shape and dtype out."""

    size = images.shape[1:3]
    matrices = affine_matrices(tf.shape(images)[0], size, seed, **ranges)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(images, tf.float32),
        transforms=matrices,
        output_shape=tf.constant(list(size), tf.int32),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    if images.dtype == tf.uint8:
        return _to_uint8(out)
    return tf.cast(out, images.dtype)


@_batched
def augment_images(images, recipe, seed):
    """Training-only random transforms of a batch.

    Args:
        images: `(B, H, W, C)` or `(H, W, C)` images (any dtype).
        recipe: one of `RECIPES`.
        seed: a stateless seed, int tensor of shape `(2,)`; the pipeline
            draws a new one per batch from a seeded `Dataset.random`.

    Returns:
        Images of the same shape and dtype.
    """

    check_recipe(recipe)
    if recipe in ("none", RANDOM_RESIZED_CROP):  # the latter: per image
        return images
    if recipe == AFFINE:
        return random_affine(images, seed)
    seeds = tf.random.experimental.stateless_split(seed, 2)
    batch = tf.shape(images)[0]
    if recipe == "pad_crop_flip":
        images = pad_crop(images, crop_offsets(batch, seeds[0]))
    return flip(images, flip_mask(batch, seeds[1]))


def default_recipe(name, native_channels):
    """The augmentation recipe used for `name` when `augment=True`."""
    base = name.split(":")[-1] if name.startswith("tfds:") else name
    if base in ("cifar10", "cifar100"):
        return "pad_crop_flip"
    if base in ("mnist", "fashion_mnist", "kmnist", "emnist/letters"):
        return "none"
    if base.startswith("emnist"):
        return "none"
    return "flip" if native_channels == 3 else "none"


def training_recipe(augment, name, native_channels, style="plain"):
    """The augmentation recipe of a training split, or `None` (off).

    Args:
        augment: `True` (the data set's `default_recipe`), `False`/`None`
            (off) or a recipe name.
        name: the data set name.
        native_channels: channels of the stored images.
        style: `"plain"` or `"imagenet"`; the ImageNet style's recipe is
            always `RANDOM_RESIZED_CROP` (per image, while decoding).
    """
    if augment is False or augment is None:
        return None
    if augment is True:
        recipe = default_recipe(name, native_channels)
    else:
        recipe = check_recipe(augment)
    return RANDOM_RESIZED_CROP if style == "imagenet" else recipe
