"""`convert`: any image data set -> TFRecord shards of `tf.train.Example`s
plus a JSON manifest, a data set name like any other afterwards.

    from kerascnn.data.convert import convert
    manifest = convert("/data/food101", "/data/food101-shards", shards=64)
    # kerascnn fit resnet50 --dataset /data/food101-shards

Layout (split per folder, the manifest last):

    OUT_DIR/manifest.json
    OUT_DIR/train/train-00000-of-00064.tfrecord ...
    OUT_DIR/test/test-00000-of-00008.tfrecord ...

Each example holds the image, `image/class/label` and `image/filename`.
The image, by `encoding`:

* `"original"` (default): `image/encoded` holds the file's own bytes when
  no resize is asked (JPEG and PNG copied bit for bit), else the resized
  image as JPEG at `quality`, or PNG for PNG sources; arrays (IDX, `.npz`,
  TFDS) as PNG, lossless.
* `"jpeg"` / `"png"`: every image re-encoded so (`image/encoded`).
* `"raw"`: the decoded uint8 pixels in `image/pixels` with `image/height`,
  `image/width`, `image/channels`: nothing to decode when reading (for
  input pipelines bound by JPEG decoding), at H * W * C bytes per image.

The manifest records class names, counts per split, class and shard, the
image size, the encoding, the source and each shard's SHA-256.

Atomic: everything is written to `OUT_DIR.partial-<pid>` and renamed to
`OUT_DIR` at the end; an interrupted convert leaves no `OUT_DIR`, and the
partial folder has no manifest, so it never loads as a shard set.
"""

import dataclasses
import hashlib
import json
import os
import shutil

import numpy as np
import tensorflow as tf

from kerascnn.data import decode, records, sources
from kerascnn.data.options import PARALLEL_CALLS
from kerascnn.errors import DataError
from kerascnn.validation import check_image_size

EXAMPLES_PER_SHARD = 1024
DEFAULT_QUALITY = 95
ENCODINGS = ("original", "jpeg", "png", "raw")
# `image/filename` extension of array images, by encoding.
_ARRAY_EXTENSIONS = {"original": "png", "png": "png", "jpeg": "jpg",
                     "raw": "raw"}  # fmt: skip


def _check(out_dir, shards, image_size, quality, encoding):
    if os.path.exists(out_dir):
        raise DataError(
            f"{out_dir} already exists; remove it or choose another OUT_DIR "
            "(convert never overwrites a data set)."
        )
    if shards is not None and (not isinstance(shards, int) or shards < 1):
        raise DataError(
            f"`shards` must be a positive int. Received: shards={shards!r}"
        )
    check_image_size(image_size, DataError)
    if not 1 <= quality <= 100:
        raise DataError(
            f"`quality` must be in [1, 100]. Received: quality={quality!r}"
        )
    if encoding not in ENCODINGS:
        raise DataError(
            f"`encoding` must be one of {', '.join(ENCODINGS)}. "
            f"Received: encoding={encoding!r}"
        )


def _splits(name, data_dir):
    """`{split: sources.Split}` of every split the source has."""
    first = sources.read(name, "train", data_dir)
    if isinstance(first, sources.TextSplit):
        raise DataError(
            f"{name!r} is a text data set; convert writes image shards."
        )
    return {
        split: first if split == "train" else sources.read(
            name, split, data_dir
        )
        for split in sources.SPLITS
        if split in first.split_sizes
    }  # fmt: skip


def _shard_counts(sizes, shards):
    """Shards per split: `shards` for the largest split (default: one per
    `EXAMPLES_PER_SHARD`), the others in proportion, at least one."""
    largest = max(sizes.values())
    top = shards or max(1, -(-largest // EXAMPLES_PER_SHARD))
    return {
        split: max(1, min(n, round(top * n / largest)))
        for split, n in sizes.items()
    }


def _count(raw):
    if isinstance(raw, sources.ArraySplit) and raw.lazy is not None:
        return len(raw.lazy)
    return len(raw.labels)


def _array_elements(raw):
    """`(uint8 image, label)` of an array split; a lazy one (`.npz`,
    TFDS) is read as it is written, never held whole."""

    if raw.lazy is not None:
        return raw.lazy.elements()
    return tf.data.Dataset.from_tensor_slices((raw.images, raw.labels))


def _encode(image, encoding, quality):
    """A uint8 image as `encoding` stores it (`"raw"`: the image itself)."""

    if encoding == "raw":
        return image
    if encoding == "jpeg":
        return tf.io.encode_jpeg(image, quality=quality)
    return tf.io.encode_png(image)


def _encoded_elements(raw, image_size, quality, encoding):
    """`(bytes or uint8 pixels, label, name)` of a split, re-encoded only
    when needed."""

    if isinstance(raw, sources.ArraySplit):
        ext = _ARRAY_EXTENSIONS[encoding]
        names = [f"{raw.split}/{i:08d}.{ext}" for i in range(_count(raw))]
        ds = tf.data.Dataset.zip(
            _array_elements(raw), tf.data.Dataset.from_tensor_slices(names)
        )
        return ds.map(
            lambda xy, n: (_encode(xy[0], encoding, quality), xy[1], n)
        )
    if not isinstance(raw, sources.FileSplit):  # shards: already converted
        raise DataError("Cannot convert a records data set to shards.")
    ds = tf.data.Dataset.from_tensor_slices(
        (raw.paths, np.asarray(raw.labels, np.int32))
    )
    # Every file as `fit` reads it (`images.normalized_bytes`: EXIF, colour
    # modes, WebP), so the shards' pixels are the folder's.
    channels = _file_channels(raw)
    ds = ds.map(
        lambda path, y: (
            decode.assert_complete(
                decode.normalize_file_bytes(tf.io.read_file(path), channels),
                path,
            ),
            y, path,
        ),
        num_parallel_calls=PARALLEL_CALLS, deterministic=True,
    )  # fmt: skip
    if image_size is None and encoding == "original":
        return ds

    def pixels(data):
        if image_size is None:  # each image at its own size
            return decode.decode_image_bytes(data, channels)
        shape = (int(image_size[0]), int(image_size[1]), channels)
        return decode.decode_to_shape(data, shape)

    def reencode(data, y, path):
        image = pixels(data)
        if encoding != "original":
            return _encode(image, encoding, quality), y, path
        encoded = tf.cond(
            decode.is_png(data),
            lambda: tf.io.encode_png(image),
            lambda: tf.io.encode_jpeg(image, quality=quality),
        )
        return encoded, y, path

    return ds.map(reencode, num_parallel_calls=PARALLEL_CALLS,
                  deterministic=True)  # fmt: skip


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_split(raw, folder, num_shards, image_size, quality, encoding,
                 progress):  # fmt: skip
    """Writes one split's shards; returns its manifest entry."""

    os.makedirs(os.path.join(folder, raw.split))
    total = _count(raw)
    bounds = np.linspace(0, total, num_shards + 1).astype(int)
    elements = _encoded_elements(raw, image_size, quality, encoding)
    elements = elements.prefetch(64)
    it = elements.as_numpy_iterator()
    shards, class_counts = [], np.zeros(len(raw.class_names), np.int64)
    for k in range(num_shards):
        rel = f"{raw.split}/{raw.split}-{k:05d}-of-{num_shards:05d}.tfrecord"
        path = os.path.join(folder, rel)
        with tf.io.TFRecordWriter(path) as writer:
            for _ in range(bounds[k + 1] - bounds[k]):
                data, label, name = _next(it)
                writer.write(records.serialize_example(data, label, name))
                class_counts[label] += 1
                progress(1)
        shards.append({"file": rel, "count": int(bounds[k + 1] - bounds[k]),
                       "sha256": _sha256(path)})  # fmt: skip
    return {
        "count": total,
        "class_counts": dict(
            zip(raw.class_names, (int(c) for c in class_counts))
        ),
        "shards": shards,
    }


def _next(it):

    try:
        return next(it)
    except tf.errors.InvalidArgumentError as e:
        raise (decode.bad_file_error(e) or e) from None


def _image_fields(splits, image_size, encoding):
    """Manifest `image_size` (`None`: sizes vary) and `channels`."""
    raw = splits["train"]
    if isinstance(raw, sources.ArraySplit):
        lazy = raw.lazy
        h, w, c = lazy.image_shape if lazy else raw.images.shape[1:]
        return [int(h), int(w)], int(c)
    channels = _file_channels(raw)
    if image_size is not None:
        return [int(image_size[0]), int(image_size[1])], min(channels, 3)
    return None, channels  # files keep their own (possibly mixed) sizes


def _checked_headers(raw, skip_bad):
    """`raw` after `decode.check_headers` (files that are not images or
    claim too many pixels: named, or left out with `skip_bad`)."""
    if not isinstance(raw, sources.FileSplit):
        return raw
    paths, labels = decode.check_headers(
        raw.paths, raw.labels, skip_bad, f"the {raw.split} split"
    )
    return dataclasses.replace(raw, paths=paths, labels=labels)


def _without_bad_files(raw):
    """`raw` without the files that do not decode (named once)."""
    if not isinstance(raw, sources.FileSplit):
        return raw
    ok = [decode.native_shape(p) is not None for p in raw.paths]
    if all(ok):
        return raw
    sources.warn_skipped(
        [p for p, good in zip(raw.paths, ok) if not good],
        f"of the {raw.split} split that could not be decoded",
    )
    keep = np.flatnonzero(ok)
    return dataclasses.replace(
        raw, paths=[raw.paths[i] for i in keep],
        labels=np.asarray(raw.labels)[keep],
    )  # fmt: skip


def _file_channels(raw):
    """Channels of a folder's shards: its first image's, at most 3 (each
    file is converted to them)."""
    return min((decode.native_shape(raw.paths[0]) or (0, 0, 3))[2], 3)


def _encoding_field(encoding, image_size, quality):
    """The manifest's `encoding` (the reader decodes by it)."""
    if encoding == "original":
        if image_size is None:
            return "original"
        return f"jpeg (quality {quality}); png sources stay png"
    if encoding == "jpeg":
        return f"jpeg (quality {quality})"
    return encoding


def raw_size_estimate(splits, image_size):
    """`(bytes, exact)`: what raw pixels of `splits` take, exact when
    every image has one size, else at the first image's size."""
    size, channels = _image_fields(splits, image_size, "raw")
    exact = size is not None
    if size is None:
        size = _first_shape(splits["train"])[:2]
    n = sum(_count(raw) for raw in splits.values())
    return n * size[0] * size[1] * channels, exact


def _first_shape(raw):
    return decode.native_shape(raw.paths[0]) or (0, 0, 0)


def convert(source, out_dir, *, shards=None, image_size=None,
            quality=DEFAULT_QUALITY, encoding="original", data_dir=None,
            progress=None, note=None, skip_bad=False):  # fmt: skip
    """Writes `source` as TFRecord shards + `manifest.json` in `out_dir`.

    Args:
        source: any image data set name `kerascnn.data.load` accepts.
        out_dir: the new shard set's folder (must not exist).
        shards: shards of the largest split (others in proportion);
            default one per 1,024 examples.
        image_size: `(H, W)` to resize to (re-encodes); default: keep the
            files' own bytes.
        quality: JPEG quality when re-encoding. Defaults to `95`.
        encoding: `"original"` (default: the files' own bytes unless
            resized), `"jpeg"`, `"png"` or `"raw"` (decoded uint8 pixels,
            H * W * C bytes per image, nothing to decode when read).
        data_dir: local data folder for built-in names.
        progress: optional callable `(total)` returning a callable
            `(n_done_now)`, for a progress bar.
        note: optional callable `(line)`: told the estimated size of a
            raw set before writing it.
        skip_bad: leave out image files that cannot be decoded (checked
            before writing, named in one `DataNotice`) instead of raising.

    Returns:
        The manifest (a dict).

    Raises:
        DataError: bad arguments, an existing `out_dir`, a text data set,
            or an unreadable image file (named).
    """
    out_dir = os.path.abspath(os.path.expanduser(out_dir))
    _check(out_dir, shards, image_size, quality, encoding)
    splits = _splits(source, data_dir)
    splits = {s: _checked_headers(raw, skip_bad) for s, raw in splits.items()}
    if skip_bad:
        splits = {s: _without_bad_files(raw) for s, raw in splits.items()}
    if encoding == "raw" and note is not None:
        nbytes, exact = raw_size_estimate(splits, image_size)
        at = "" if exact else ", at the first image's size"
        note(f"Raw pixels take ~{nbytes / 2**20:,.1f} MiB "
             f"(H x W x C bytes per image{at}).")  # fmt: skip
    sizes = {s: _count(raw) for s, raw in splits.items()}
    counts = _shard_counts(sizes, shards)
    step = (progress or (lambda total: lambda n: None))(sum(sizes.values()))
    partial = f"{out_dir}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    try:
        size, channels = _image_fields(splits, image_size, encoding)
        manifest = {
            "format": records.FORMAT,
            "version": 1,
            "source": splits["train"].source,
            "class_names": list(splits["train"].class_names),
            "image_size": size,
            "channels": channels,
            "encoding": _encoding_field(encoding, image_size, quality),
            "splits": {
                s: _write_split(
                    raw, partial, counts[s], image_size, quality, encoding, step
                )  # fmt: skip
                for s, raw in splits.items()
            },
        }
        with open(os.path.join(partial, records.MANIFEST), "w") as f:
            json.dump(manifest, f, indent=2)
        os.rename(partial, out_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest
