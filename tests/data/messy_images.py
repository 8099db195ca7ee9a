"""Real messy image files made from CIFAR-10 photos, for the tests.

Each kind is one way people's folders hold pictures: every colour mode
(L, LA, RGB, RGBA, P with transparency, CMYK, 16-bit grey), every format
(JPEG, PNG, BMP, GIF, WebP), EXIF-rotated JPEGs, upper-case extensions
and sizes from 20 to 800 px.
"""

import io
import os

import numpy as np

# name -> (size (W, H), how it is written)
KINDS = {
    "plain.jpg": ((32, 32), "rgb_jpeg"),
    "upper.JPG": ((20, 20), "rgb_jpeg"),
    "grey.jpeg": ((48, 48), "l_jpeg"),
    "cmyk.jpg": ((64, 48), "cmyk_jpeg"),
    "rotated.jpg": ((120, 80), "exif6_jpeg"),
    "rgba.png": ((40, 40), "rgba_png"),
    "grey_alpha.png": ((36, 36), "la_png"),
    "palette.png": ((30, 30), "p_trans_png"),
    "deep.png": ((50, 50), "i16_png"),
    "upper.PNG": ((32, 32), "rgb_png"),
    "wide.bmp": ((300, 200), "rgb_bmp"),
    "anim.gif": ((32, 32), "gif2"),
    "big.webp": ((800, 600), "webp"),
}


def cifar_files(data_dir, class_name, count, start=0):
    folder = os.path.join(data_dir, "cifar10", "train", class_name)
    names = sorted(os.listdir(folder))[start : start + count]
    return [os.path.join(folder, n) for n in names]


def _transparent_mask(size):
    from PIL import Image

    mask = Image.new("L", size, 255)
    mask.paste(0, (0, 0, size[0] // 3, size[1] // 3))  # a clear corner
    return mask


def encode(source, how, size):
    """Bytes of `source` (a PIL RGB image) resized to `size`, written as
    `how` says."""
    from PIL import Image

    image = source.convert("RGB").resize(size, Image.BILINEAR)
    out = io.BytesIO()
    if how == "rgb_jpeg":
        image.save(out, "JPEG", quality=92)
    elif how == "l_jpeg":
        image.convert("L").save(out, "JPEG", quality=92)
    elif how == "cmyk_jpeg":
        image.convert("CMYK").save(out, "JPEG", quality=92)
    elif how == "exif6_jpeg":
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 degrees clockwise to view
        image.save(out, "JPEG", quality=92, exif=exif)
    elif how == "rgba_png":
        image.putalpha(_transparent_mask(size))
        image.save(out, "PNG")
    elif how == "la_png":
        grey = image.convert("L")
        grey.putalpha(_transparent_mask(size))
        grey.save(out, "PNG")
    elif how == "p_trans_png":
        image.convert("P", palette=Image.ADAPTIVE).save(
            out, "PNG", transparency=0
        )
    elif how == "i16_png":
        grey = np.asarray(image.convert("L"), np.uint16) * 257
        Image.fromarray(grey).save(out, "PNG")
    elif how == "rgb_png":
        image.save(out, "PNG")
    elif how == "rgb_bmp":
        image.save(out, "BMP")
    elif how == "gif2":
        second = image.transpose(Image.FLIP_LEFT_RIGHT)
        image.save(out, "GIF", save_all=True, append_images=[second])
    elif how == "webp":
        image.save(out, "WEBP", quality=90)
    else:
        raise ValueError(how)
    return out.getvalue()


def write_kinds(folder, sources):
    """Writes one file per kind into `folder` from `sources` (CIFAR
    paths, used in turn); returns the paths."""
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, (name, (size, how)) in enumerate(KINDS.items()):
        source = Image.open(sources[i % len(sources)])
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(encode(source, how, size))
        paths.append(path)
    return paths


def write_strays(folder, empty_jpeg=True):
    """A README.txt, a .DS_Store and (optionally) a zero-byte .jpg."""
    with open(os.path.join(folder, "README.txt"), "w") as f:
        f.write("photos from my phone\n")
    with open(os.path.join(folder, ".DS_Store"), "wb") as f:
        f.write(b"\x00\x00\x00\x01Bud1")
    if empty_jpeg:
        open(os.path.join(folder, "empty.jpg"), "wb").close()


def messy_folder(data_dir, root, classes=("cat", "dog"), empty_jpeg=True):
    """`<root>/<class>/` with every kind, strays in each class and one
    zero-byte `.jpg` in the first class."""
    for k, name in enumerate(classes):
        folder = os.path.join(root, name)
        write_kinds(folder, cifar_files(data_dir, name, len(KINDS)))
        write_strays(folder, empty_jpeg=empty_jpeg and k == 0)
    return root
