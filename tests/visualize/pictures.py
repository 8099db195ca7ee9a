"""Checks shared by the picture tests."""

import numpy as np
from PIL import Image


def png_pixels(path):
    """Checks a file is a PNG and returns its RGB pixels `(H, W, 3)`."""
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def assert_not_blank(pixels):
    assert pixels.astype(np.float64).var() > 0
