"""What a model eats: the `preprocessing` spec of image data, and the
ImageNet style.

One home for the normalization policy: the per-data-set mean/std
(`default_standardization`), the style a split is read in
(`resolve_style`: `"plain"`, or `"imagenet"` for image folders and shards
at `IMAGENET_MIN_SIDE` px or more: random-resized crops for training,
a centre crop of `IMAGENET_CROP_FRACTION` for evaluation, ImageNet
mean/std) and the dict that says it all (`image_preprocessing`), stored
in `DatasetInfo.preprocessing` and the model's metadata, and applied by
`augment.preprocess_images` in training, evaluation, serving and
`predict`.

`preprocessing` is the JSON-able dict stored in `DatasetInfo.preprocessing`:
`{"scale": 1/255, "mean": [...] or None, "std": [...] or None,
"channels": C, "image_size": [H, W]}`, plus `"center_crop": 0.875` for
the ImageNet style: images of another size are center-cropped to that
fraction of their shorter side before the resize (evaluation, serving,
predict).
"""

from kerascnn.errors import DataError

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Evaluation crop of the ImageNet style: 224 / 256.
IMAGENET_CROP_FRACTION = 0.875
STYLES = ("auto", "plain", "imagenet")
# "auto" style: ImageNet preprocessing for image folders and shards whose
# model input is at least this many pixels on its shorter side.
IMAGENET_MIN_SIDE = 128


def resolve_style(style, from_files, image_size):
    """`"plain"` or `"imagenet"`: see `STYLES` and `IMAGENET_MIN_SIDE`.

    Args:
        style: one of `STYLES`.
        from_files: whether the split is read from encoded files (an image
            folder or shards): only those can take ImageNet crops.
        image_size: `(H, W)` of the model input.
    """
    if style not in STYLES:
        raise DataError(
            f"`style` must be one of {STYLES}. Received: style={style!r}"
        )
    if style != "auto":
        return style
    big = min(image_size) >= IMAGENET_MIN_SIDE
    return "imagenet" if from_files and big else "plain"


def default_standardization(name, style=None):
    """Per-channel `(mean, std)` for `name`, or `(None, None)`."""
    if style == "imagenet":
        return IMAGENET_MEAN, IMAGENET_STD
    base = name[len("tfds:") :] if name.startswith("tfds:") else name
    if base == "cifar10":
        return CIFAR10_MEAN, CIFAR10_STD
    return None, None


def make_preprocessing(channels, image_size, mean=None, std=None,
                       center_crop=None):  # fmt: skip
    """Builds the `preprocessing` dict for `DatasetInfo`.

    Args:
        channels: channels the model expects (1 or 3).
        image_size: `(H, W)` the model expects.
        mean: per-channel mean after scaling to [0, 1], or `None`.
        std: per-channel std after scaling to [0, 1], or `None`.
        center_crop: fraction of the shorter side kept around the centre
            before resizing an image of another size (ImageNet: 0.875), or
            `None` for a plain resize.
    """
    if channels not in (1, 3):
        raise DataError(
            f"`channels` must be 1 or 3. Received: channels={channels}"
        )
    if mean is not None and len(mean) != channels:  # e.g. CIFAR as grayscale
        mean = [sum(mean) / len(mean)] * channels
        std = [sum(std) / len(std)] * channels
    spec = {
        "scale": 1.0 / 255.0,
        "mean": None if mean is None else [float(m) for m in mean],
        "std": None if std is None else [float(s) for s in std],
        "channels": int(channels),
        "image_size": [int(image_size[0]), int(image_size[1])],
    }
    if center_crop is not None:
        spec["center_crop"] = float(center_crop)
    return spec


def check_normalization(normalization, channels):
    """`{"scale", "mean", "std"}` checked against `channels`: the keys of
    a `preprocessing` dict that pretrained weights fix (see
    `kerascnn.models.weights`)."""
    out = {"scale": float(normalization.get("scale", 1.0 / 255.0))}
    for key in ("mean", "std"):
        values = normalization.get(key)
        if values is not None and len(values) != channels:
            raise DataError(
                f"The weights expect {len(values)}-channel images; this "
                f"model reads {channels} channel(s). Received: "
                f"{key}={list(values)}"
            )
        out[key] = None if values is None else [float(x) for x in values]
    return out


def image_preprocessing(name, native_shape, image_size=None, channels=None,
                        style="plain", normalization=None):  # fmt: skip
    """The `preprocessing` dict of an image split.

    Args:
        name: the data set name (its own mean/std, e.g. CIFAR-10's).
        native_shape: `(H, W, C)` of the stored images.
        image_size: `(H, W)` of the model input; default: native.
        channels: `1` or `3` for the model; default: native (at most 3).
        style: `"plain"` or `"imagenet"` (3 channels, centre crop,
            ImageNet mean/std).
        normalization: `{"scale", "mean", "std"}` that replaces the data
            set's own (pretrained weights), or `None`.
    """
    size = tuple(image_size) if image_size else tuple(native_shape[:2])
    mean, std = default_standardization(name, style)
    imagenet = style == "imagenet"
    spec = make_preprocessing(
        3 if imagenet else channels or min(native_shape[2], 3), size, mean,
        std, center_crop=IMAGENET_CROP_FRACTION if imagenet else None,
    )  # fmt: skip
    if normalization:
        spec.update(check_normalization(normalization, spec["channels"]))
    return spec
