"""One way to read an image file, in every command and in the server.

TensorFlow's in-graph decoder (`tf.io.decode_image`) reads baseline
JPEG, PNG, GIF and BMP, but not WebP, CMYK/YCCK JPEGs or EXIF
orientation, and converts alpha, palette transparency, 16-bit PNGs and
RGB -> grey in its own ways. Pillow reads them all. So every reader of
image files (`fit`, `evaluate`, `data convert`, `predict`, and
`kerascnn serve` for the `predict_images` signature) first passes the
file's bytes through `normalized_bytes`:

* bytes that `tf.io.decode_image` decodes to the pixels of the policy
  below (an 8-bit grey or RGB JPEG without an EXIF rotation, an 8-bit
  grey or RGB PNG without transparency, an RGB BMP) pass unchanged;
* anything else is decoded with Pillow by the policy and re-encoded as a
  lossless PNG, which TensorFlow then decodes exactly;
* bytes Pillow cannot open pass unchanged, so the file checks downstream
  (`decode.looks_complete`) name the bad file.

The policy (`pixels`): the first frame; the EXIF orientation applied;
16-bit samples scaled to 8 bits (`value >> 8`); CMYK and YCCK JPEGs
converted to RGB by Pillow; transparency (RGBA, LA, a palette or grey
image with a transparent colour) composited over white
(`ALPHA_BACKGROUND`); then grey (ITU-R 601 luma, Pillow's `L`) or RGB,
as many channels as the model takes. TensorFlow then resizes, as
`decode.resize_pixels` says.

A client of TF Serving itself (which runs the signature without this
step) gets the same pixels for the pass-through kinds; for the others it
should send `normalized_bytes(data, channels)`.

This module imports neither TensorFlow nor NumPy at module level.
"""

import io
import os
import struct
import warnings

from kerascnn.lazy import LazyModule

np = LazyModule("numpy")
tf = LazyModule("tensorflow")

# Extensions read as images (compared in lower case).
IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".webp",
)  # fmt: skip
# What transparent pixels are composited over (grey 255 = white).
ALPHA_BACKGROUND = (255, 255, 255)
# Formats and Pillow modes that `tf.io.decode_image` reads as Pillow does
# (TensorFlow's BMP decoder gives 3 or 4 channels, never 1: a grey BMP
# goes through Pillow).
_TF_SAME = {"JPEG": ("L", "RGB"), "PNG": ("L", "RGB"), "BMP": ("RGB",)}
_EXIF_ORIENTATION = 0x0112
_GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N")


def is_image_name(name):
    """Whether a file name has an image extension (any case)."""
    return os.path.basename(name).lower().endswith(IMAGE_EXTENSIONS)


def is_hidden(name):
    """Hidden files (`.DS_Store`, `._photo.jpg`) are never images."""
    return os.path.basename(name).startswith(".")


def _open(data):
    return _opened(io.BytesIO(data))


def _opened(source):
    """`Image.open` without Pillow's decompression-bomb warning: readers
    refuse images past `MAX_IMAGE_PIXELS` themselves, in one line."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(source)


def _orientation(image):
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION, 1) or 1)
    except Exception:  # a damaged EXIF block: not rotated
        return 1


def _bit_depth(data, image):
    if image.format == "PNG" and len(data) > 24:
        return data[24]  # IHDR bit depth
    return 8


def native_channels(data):
    """1 for a grey image (with or without alpha, any bit depth), else 3.

    Raises:
        OSError, ValueError (PIL's): the bytes are not a readable image.
    """
    mode = _open(data).mode
    return 1 if mode in _GREY_MODES else 3


def header_shape(path):
    """`(H, W, C)` of an image file as the policy reads it (EXIF rotation
    swaps H and W), from its header only; `None` if it is no image."""

    try:
        with _opened(path) as image:  # reads the header only
            width, height = image.size
            if _orientation(image) in (5, 6, 7, 8):
                width, height = height, width
            return height, width, 1 if image.mode in _GREY_MODES else 3
    except Exception:  # unreadable: the readers name it
        return None


def tf_reads_as_is(data, image, channels):
    """Whether TensorFlow decodes `data` (opened as `image`) to the
    policy's pixels with `channels` (1 or 3)."""
    modes = _TF_SAME.get(image.format, ())
    if image.mode not in modes or "transparency" in image.info:
        return False
    if _bit_depth(data, image) != 8 or _orientation(image) != 1:
        return False
    # Grey -> RGB repeats the value in both; RGB -> grey differs.
    return not (image.mode == "RGB" and channels == 1)


def pixels(data, channels):
    """Pillow's pixels of encoded image bytes by the policy above.

    Args:
        data: the file's bytes.
        channels: `1` (grey) or `3` (RGB).

    Returns:
        uint8 NumPy array `(H, W, channels)`.

    Raises:
        OSError, ValueError (PIL's): the bytes are not a readable image.
    """

    image = _policy_image(_open(data), channels)
    array = np.asarray(image, dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array


def _policy_image(image, channels):
    """A PIL image -> the policy's `L` or `RGB` image."""
    from PIL import Image, ImageOps

    image.seek(0)
    image.load()
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        image = _sixteen_to_eight(image)
    if image.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGB")
    if image.mode == "P" or "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, ALPHA_BACKGROUND + (255,))
        image = Image.alpha_composite(background, rgba)
    target = "L" if channels == 1 else "RGB"
    if image.mode == "1":
        image = image.convert("L")
    return image.convert(target) if image.mode != target else image


def _sixteen_to_eight(image):
    """16-bit grey -> 8 bits by the high byte (Pillow's own convert clips
    at 255 instead of scaling)."""
    from PIL import Image

    wide = np.asarray(image, dtype=np.int64)
    return Image.fromarray((np.clip(wide, 0, 65535) >> 8).astype(np.uint8))


# JPEG start-of-frame markers (baseline, extended, progressive, lossless).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7,
        0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}  # fmt: skip


def _plain_by_header(data, channels):
    """True when the header alone shows TensorFlow reads `data` as the
    policy does (`tf_reads_as_is`): an 8-bit grey or RGB PNG without
    transparency or EXIF, or a 1- or 3-component JPEG without an EXIF
    rotation. False means "ask Pillow", not "not plain"."""
    try:
        if data.startswith(b"\xff\xd8\xff"):
            return _plain_jpeg(data, channels)
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return _plain_png(data, channels)
    except (IndexError, ValueError):
        pass
    return False


def _plain_jpeg(data, channels):
    pos, components, rotated = 2, None, False
    while pos + 4 <= len(data) and components is None:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        segment = data[pos + 4 : pos + 2 + length]
        if marker == 0xE1 and segment.startswith(b"Exif\0\0"):
            rotated = _exif_orientation(segment[6:]) not in (None, 1)
        elif marker in _SOF:
            components = segment[5]
        elif marker == 0xDA:  # scan data before any frame header
            return False
        pos += 2 + length
    if rotated or components not in (1, 3):
        return False
    return not (components == 3 and channels == 1)


def _exif_orientation(tiff):
    """The Orientation tag of a TIFF-structured EXIF block, or `None`."""
    order = {b"II": "little", b"MM": "big"}.get(tiff[:2])
    if order is None:
        return None
    ifd = int.from_bytes(tiff[4:8], order)
    count = int.from_bytes(tiff[ifd : ifd + 2], order)
    for i in range(count):
        entry = tiff[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
        if int.from_bytes(entry[0:2], order) == _EXIF_ORIENTATION:
            return int.from_bytes(entry[8:10], order)
    return None


def _plain_png(data, channels):
    depth, colour = data[24], data[25]
    if depth != 8 or colour not in (0, 2):  # 8-bit grey or RGB only
        return False
    if colour == 2 and channels == 1:
        return False
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if kind in (b"tRNS", b"eXIf"):
            return False
        if kind == b"IDAT":
            return True
        pos += 12 + length
    return False


def normalized_bytes(data, channels):
    """Bytes that `tf.io.decode_image(channels=channels)` decodes to the
    policy's pixels (see the module docstring).

    Args:
        data: encoded image bytes (`bytes`).
        channels: `1` or `3`, the model's.

    Returns:
        `data` itself when TensorFlow reads it the same way or when it is
        not a readable image; `b""` when its header claims more than
        `MAX_IMAGE_PIXELS` (the file checks downstream refuse it without
        decoding it); else a lossless PNG of the policy's pixels.
    """
    if too_large(data):
        return b""
    if _plain_by_header(data, channels):
        return data  # the common case, decided without Pillow
    try:
        image = _open(data)
        if tf_reads_as_is(data, image, channels):
            return data
        out = io.BytesIO()
        _policy_image(image, channels).save(out, "PNG", compress_level=1)
        return out.getvalue()
    except Exception:  # not an image: named by the checks downstream
        return data


def normalize_tensor(data, channels):
    """`normalized_bytes` inside tf.data: a scalar string tensor in and
    out (`tf.numpy_function`, so not for graphs that must serialize)."""

    def run(value):
        return normalized_bytes(bytes(value), channels)

    out = tf.numpy_function(run, [data], tf.string, stateful=False)
    return tf.ensure_shape(out, [])


# ========================= Sizes from headers =========================

# Most pixels (width x height) of one image file that any reader decodes:
# 8192x8192, the server's default per request (`--max-decoded-pixels`).
# A 100 KB PNG can claim 30000x30000 pixels (a "decompression bomb"); its
# header says so before anything is decoded.
MAX_IMAGE_PIXELS = 2**26
# Bytes of a file read for its header; a JPEG whose frame header comes
# later (a long EXIF or ICC block) is read whole.
HEADER_BYTES = 65536


def encoded_size(data):
    """`(width, height)` from an encoded image's header, or `None`.

    Reads PNG (IHDR), GIF (logical screen), BMP (info header), JPEG
    (the first start-of-frame marker) and WebP (VP8, VP8L, VP8X) without
    decoding anything: what a decoder would allocate for the first frame.
    """
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])
        if data[:2] == b"BM":
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
        if data[:3] == b"\xff\xd8\xff":
            return _jpeg_size(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
    except struct.error:  # truncated: the decoder refuses it as it is
        return None
    return None


def _webp_size(data):
    kind = data[12:16]
    if kind == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if kind == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L" and data[20:21] == b"\x2f":
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg_size(data):
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def read_header(path):
    """The first bytes of the file at `path`: enough for `encoded_size`
    (`HEADER_BYTES`, or the whole file for a JPEG whose frame header
    comes later)."""
    with open(path, "rb") as f:
        head = f.read(HEADER_BYTES)
        if (
            len(head) == HEADER_BYTES
            and head[:3] == b"\xff\xd8\xff"
            and _jpeg_size(head) is None
        ):
            head += f.read()
    return head


def too_large(data, limit=None):
    """Why encoded image bytes (or their header) are too large to decode,
    in words (`"30000x20000 pixels, more than ..."`), or `None`.

    Args:
        data: the bytes, or at least their header (`read_header`).
        limit: most pixels; default `MAX_IMAGE_PIXELS`.
    """
    limit = MAX_IMAGE_PIXELS if limit is None else limit
    size = encoded_size(data)
    if size is None or size[0] * size[1] <= limit:
        return None
    width, height = size
    return (
        f"{width}x{height} pixels, more than the {limit:,} "
        f"({_side(limit)}) an image may have"
    )


def _side(limit):
    side = int(limit**0.5)
    return f"{side}x{side}" if side * side == limit else f"{limit:,} pixels"


# ======================= Light-on-dark digits =======================

# Data sets whose images are light strokes on a dark background.
LIGHT_ON_DARK = ("mnist", "fashion_mnist", "kmnist", "emnist")
# Mean border brightness (0-255) above which a background is light.
LIGHT_BACKGROUND = 128
INVERTED_NOTE = (
    "light background: inverted, since the model was trained on light "
    "digits on a dark background"
)


def light_on_dark(dataset):
    """Whether a model trained on `dataset` expects light-on-dark images
    (MNIST and its kin, also as `tfds:mnist`)."""
    name = str(dataset or "").lower().removeprefix("tfds:").split("/")[0]
    return name.split(":")[0] in LIGHT_ON_DARK


def light_background(image):
    """Whether a uint8 `(H, W, C)` image has a light border (its
    outermost rows and columns average at least `LIGHT_BACKGROUND`): a
    digit drawn dark on white paper."""

    image = np.asarray(image, np.float64)
    border = np.concatenate(
        [image[0].ravel(), image[-1].ravel(), image[:, 0].ravel(),
         image[:, -1].ravel()]
    )  # fmt: skip
    return float(border.mean()) >= LIGHT_BACKGROUND
