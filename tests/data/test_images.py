"""One way to read an image file (`kerascnn.data.images`), checked on real
files made from CIFAR-10 photos in every mode and format: the policy's
pixels, and the same pixels in every path that reads files (in-memory
and streamed training data, shards, `predict`, the exported
`predict_images` signature and the server's normalization)."""

import io
import os
import struct
import zlib

import numpy as np
import pytest

from kerascnn.data import images
from tests.data import messy_images

SHAPE_RGB = (24, 24, 3)
SHAPE_GREY = (24, 24, 1)


@pytest.fixture(scope="module")
def kinds(data_dir, tmp_path_factory):
    """`{name: path}`: one file of each kind."""
    folder = tmp_path_factory.mktemp("kinds")
    sources = messy_images.cifar_files(data_dir, "cat", 3)
    paths = messy_images.write_kinds(str(folder), sources)
    return {os.path.basename(p): p for p in paths}


def _read(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("name", sorted(messy_images.KINDS))
@pytest.mark.parametrize("channels", [1, 3])
def test_tensorflow_decodes_normalized_bytes_to_pillows_pixels(
    kinds, name, channels
):
    import tensorflow as tf

    from kerascnn.data import decode

    data = _read(kinds[name])
    expected = images.pixels(data, channels)
    got = decode.decode_image_bytes(
        tf.constant(images.normalized_bytes(data, channels)), channels
    ).numpy()
    assert got.shape == expected.shape
    assert got.shape[2] == channels
    np.testing.assert_array_equal(got, expected)


def test_exif_orientation_is_applied(kinds):
    from PIL import Image

    data = _read(kinds["rotated.jpg"])
    stored = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert stored.shape == (80, 120, 3)  # as written: landscape
    upright = images.pixels(data, 3)
    assert upright.shape == (120, 80, 3)  # as a phone shows it
    # Orientation 6: the stored image turned 90 degrees clockwise.
    np.testing.assert_array_equal(upright, np.rot90(stored, k=-1))


def test_transparent_pixels_are_white_and_opaque_ones_kept(kinds):
    from PIL import Image

    data = _read(kinds["rgba.png"])
    rgba = np.asarray(Image.open(io.BytesIO(data)))
    rgb = images.pixels(data, 3)
    clear = rgba[..., 3] == 0
    assert clear.sum() == (40 // 3) ** 2
    assert (rgb[clear] == 255).all()
    np.testing.assert_array_equal(rgb[~clear], rgba[..., :3][~clear])


def test_sixteen_bit_grey_keeps_its_high_byte(kinds):
    from PIL import Image

    data = _read(kinds["deep.png"])
    wide = np.asarray(Image.open(io.BytesIO(data)), np.int64)
    assert wide.max() > 255  # really 16-bit
    np.testing.assert_array_equal(images.pixels(data, 1)[..., 0], wide >> 8)


def test_cmyk_jpeg_reads_close_to_its_rgb_source(kinds):
    from PIL import Image

    cmyk = images.pixels(_read(kinds["cmyk.jpg"]), 3)
    assert Image.open(kinds["cmyk.jpg"]).mode == "CMYK"
    rgb = images.pixels(_read(kinds["plain.jpg"]), 3)  # same photo, 32 px
    assert cmyk.shape == (48, 64, 3)
    assert rgb.mean() > 0 and abs(cmyk.mean() - rgb.mean()) < 12


def test_gif_reads_its_first_frame(kinds):
    from PIL import Image

    data = _read(kinds["anim.gif"])
    gif = Image.open(io.BytesIO(data))
    assert gif.n_frames == 2
    first = np.asarray(gif.convert("RGB"))
    np.testing.assert_array_equal(images.pixels(data, 3), first)


def test_plain_files_pass_unchanged_and_others_become_png(kinds):
    assert images.normalized_bytes(_read(kinds["plain.jpg"]), 3) == _read(
        kinds["plain.jpg"]
    )
    assert images.normalized_bytes(_read(kinds["wide.bmp"]), 3) == _read(
        kinds["wide.bmp"]
    )
    for name in ("rotated.jpg", "cmyk.jpg", "big.webp", "rgba.png"):
        assert images.normalized_bytes(_read(kinds[name]), 3).startswith(
            b"\x89PNG"
        ), name
    # Not an image: unchanged, so the file checks downstream name it.
    assert images.normalized_bytes(b"hello", 3) == b"hello"
    assert images.normalized_bytes(b"", 1) == b""


def test_image_names_and_hidden_files():
    assert images.is_image_name("a/B.JPG") and images.is_image_name("x.webp")
    assert not images.is_image_name("README.txt")
    assert images.is_hidden(".DS_Store") and images.is_hidden("d/._a.jpg")


def test_light_background_and_light_on_dark_data_sets():
    dark = np.zeros((28, 28, 1), np.uint8)
    dark[10:18, 12:16] = 255
    assert not images.light_background(dark)
    assert images.light_background(255 - dark)
    assert images.light_on_dark("mnist") and images.light_on_dark("tfds:kmnist")
    assert images.light_on_dark("emnist/letters")
    assert not images.light_on_dark("cifar10")
    assert not images.light_on_dark("/home/me/photos")


@pytest.mark.parametrize("shape", [SHAPE_RGB, SHAPE_GREY], ids=["rgb", "grey"])
def test_every_path_reads_the_same_pixels(kinds, shape, tmp_path):
    """In-memory training data, streamed training data, `predict`, the
    exported `predict_images` decoder and the server's normalization give
    one file the same uint8 pixels, for every kind of file."""
    import tensorflow as tf

    from kerascnn.data import decode
    from kerascnn.export.saved_model import make_image_decoder
    from kerascnn.predict import read_image
    from kerascnn.serving.image_feeds import normalized_feeds

    names = sorted(kinds)
    paths = [kinds[n] for n in names]
    labels = np.arange(len(paths), dtype=np.int32)
    memory, _ = decode.decode_files(
        paths, labels, image_size=shape[:2], channels=shape[2]
    )
    assert memory.shape == (len(paths), *shape)

    from kerascnn.data import streaming

    spec = streaming.StreamSpec(paths, labels, None, len(paths), shape,
                                "plain", False)  # fmt: skip
    streamed = np.stack(
        [x for x, _ in streaming.decoded_elements(spec).as_numpy_iterator()]
    )
    np.testing.assert_array_equal(streamed, memory)

    predicted = np.stack([read_image(p, shape) for p in paths])
    np.testing.assert_array_equal(predicted, memory)

    class Loaded:
        metadata = {"input_shape": list(shape)}

    class Signature:
        inputs = {"images": tf.TensorSpec([None], tf.string)}

    raw = np.empty(len(paths), dtype=object)
    raw[:] = [_read(p) for p in paths]
    feeds = normalized_feeds(Loaded(), Signature(), {"images": raw})
    served = make_image_decoder(shape)(tf.constant(list(feeds["images"])))
    np.testing.assert_array_equal(served.numpy(), memory.astype(np.float32))


def test_header_shape_reads_rotation_and_channels(kinds):
    assert images.header_shape(kinds["rotated.jpg"]) == (120, 80, 3)
    assert images.header_shape(kinds["deep.png"]) == (50, 50, 1)
    assert images.header_shape(kinds["cmyk.jpg"]) == (48, 64, 3)
    assert images.header_shape(__file__) is None


@pytest.mark.parametrize("channels", [1, 3])
def test_the_header_fast_path_agrees_with_pillow(kinds, channels):
    """Files passed on from their header alone are ones Pillow would pass
    too; the plain JPEGs and PNGs (most files) take the fast path."""
    from PIL import Image

    fast = set()
    for name, path in kinds.items():
        data = _read(path)
        if images._plain_by_header(data, channels):
            fast.add(name)
            with Image.open(path) as image:
                assert images.tf_reads_as_is(data, image, channels), name
    plain = {"plain.jpg", "upper.JPG", "grey.jpeg", "upper.PNG"}
    expected = plain if channels == 3 else {"grey.jpeg"}
    assert fast == expected


# === Sizes from headers ===


def png_header(width, height):
    """A grey PNG's signature and IHDR: what it claims, with no pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    crc = zlib.crc32(b"IHDR" + header) & 0xFFFFFFFF
    ihdr = struct.pack(">I", len(header)) + b"IHDR" + header
    return b"\x89PNG\r\n\x1a\n" + ihdr + struct.pack(">I", crc)


def png_bomb(width, height):
    """A complete, valid grey PNG of zeros: a few KB per 10 megapixels."""
    squeeze = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    pixels = b"".join(squeeze.compress(row) for _ in range(height))
    pixels += squeeze.flush()
    idat = struct.pack(">I", len(pixels)) + b"IDAT" + pixels
    idat += struct.pack(">I", zlib.crc32(b"IDAT" + pixels) & 0xFFFFFFFF)
    iend = b"\x00\x00\x00\x00IEND\xaeB`\x82"
    return png_header(width, height) + idat + iend


def test_image_sizes_are_read_from_headers():
    assert images.encoded_size(png_header(33, 7)) == (33, 7)
    gif = b"GIF89a" + struct.pack("<HH", 640, 480) + b"\x00" * 10
    assert images.encoded_size(gif) == (640, 480)
    bmp = b"BM" + b"\x00" * 16 + struct.pack("<ii", 300, -200) + b"\x00" * 8
    assert images.encoded_size(bmp) == (300, 200)
    jpeg = (
        b"\xff\xd8\xff\xe0"
        + struct.pack(">H", 4)
        + b"ab"
        + b"\xff\xc0"
        + struct.pack(">HBHH", 11, 8, 20000, 30000)
        + b"\x03"
    )
    assert images.encoded_size(jpeg) == (30000, 20000)
    webp = b"RIFF" + b"\x00" * 4 + b"WEBPVP8X" + b"\x00" * 8
    webp += (16383).to_bytes(3, "little") + (99).to_bytes(3, "little")
    assert images.encoded_size(webp) == (16384, 100)
    assert images.encoded_size(b"not an image") is None
    assert images.encoded_size(png_header(33, 7)[:20]) is None  # truncated


@pytest.mark.parametrize(
    "fmt, options",
    [
        ("PNG", {}),
        ("JPEG", {"progressive": True}),
        ("GIF", {}),
        ("BMP", {}),
        ("WEBP", {"lossless": False}),
        ("WEBP", {"lossless": True}),
    ],
)
def test_image_sizes_of_real_encoders(fmt, options):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (123, 45), (200, 10, 10)).save(buffer, fmt, **options)
    assert images.encoded_size(buffer.getvalue()) == (123, 45)


def test_a_jpeg_frame_header_after_a_long_exif_block_is_found(tmp_path):
    from PIL import Image

    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010E] = "x" * 60_000  # ImageDescription: ~60 KB of APP1
    icc = bytes(range(256)) * 300  # a 77 KB "profile": two APP2 segments
    Image.new("RGB", (321, 123)).save(
        buffer, "JPEG", exif=exif.tobytes(), icc_profile=icc
    )
    path = tmp_path / "long_header.jpg"
    path.write_bytes(buffer.getvalue())
    head = images.read_header(str(path))
    assert len(head) > images.HEADER_BYTES
    assert images.encoded_size(head) == (321, 123)


def test_too_large_names_the_size_and_the_limit():
    assert images.too_large(png_header(8192, 8192)) is None
    message = images.too_large(png_header(8193, 8192))
    assert message.startswith("8193x8192 pixels, more than the 67,108,864")
    assert "(8192x8192)" in message
    assert images.too_large(png_header(200, 100), limit=10_000) is not None
    assert images.too_large(b"not an image") is None


def _odd_encodings(source):
    """Valid files of rarer kinds, each as bytes (cameras, scanners and
    old tools write them)."""
    from PIL import Image

    def save(image, fmt, **options):
        out = io.BytesIO()
        image.save(out, fmt, **options)
        return out.getvalue()

    rotated = Image.Exif()
    rotated[0x0112] = 3  # upside down
    frames = [source, source.transpose(Image.FLIP_LEFT_RIGHT)]
    return {
        "grey.bmp": save(source.convert("L"), "BMP"),
        "one_bit.bmp": save(source.convert("1"), "BMP"),
        "palette.bmp": save(source.convert("P"), "BMP"),
        "one_bit.png": save(source.convert("1"), "PNG"),
        "four_bit_palette.png": save(source.quantize(16), "PNG", bits=4),
        "grey.gif": save(source.convert("L"), "GIF"),
        "progressive.jpg": save(source, "JPEG", progressive=True),
        "upside_down.jpg": save(source, "JPEG", exif=rotated.tobytes()),
        "two_frames.jpg": save(source, "JPEG") + save(source, "JPEG"),
        "animated.webp": save(
            frames[0], "WEBP", save_all=True, append_images=frames[1:]
        ),
    }


@pytest.mark.parametrize("channels", [1, 3])
def test_rarer_files_decode_to_pillows_pixels(data_dir, channels):
    import tensorflow as tf
    from PIL import Image

    from kerascnn.data import decode

    path = messy_images.cifar_files(data_dir, "dog", 1)[0]
    source = Image.open(path).convert("RGB").resize((40, 30))
    for name, data in _odd_encodings(source).items():
        expected = images.pixels(data, channels)
        normalized = images.normalized_bytes(data, channels)
        got = decode.decode_image_bytes(tf.constant(normalized), channels)
        assert expected.shape == (30, 40, channels), name
        np.testing.assert_array_equal(got.numpy(), expected, err_msg=name)
