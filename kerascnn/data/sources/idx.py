"""IDX files (MNIST, Fashion-MNIST, KMNIST, EMNIST): uint8 arrays.

The payload is already raw pixels, so a split is read whole into memory.
EMNIST stores images transposed and letters as 1..26; `emnist=True` turns
them upright and shifts the labels to 0..25.
"""

import gzip
import os

from kerascnn.data.sources.base import ArraySplit
from kerascnn.data.sources.holdout import plan_split
from kerascnn.errors import DataError
from kerascnn.lazy import LazyModule

np = LazyModule("numpy")

IMAGES_MAGIC = 0x803
LABELS_MAGIC = 0x801


def _open_maybe_gz(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def read_idx(path, expected_magic=None):
    """Reads an IDX file (gzipped or not) into a uint8 numpy array.

    Args:
        path: the file path.
        expected_magic: `0x803` (images) or `0x801` (labels); `None` accepts
            any unsigned-byte IDX file.

    Returns:
        A uint8 array with the dimensions from the header.

    Raises:
        DataError: bad magic number, short header or truncated payload.
    """
    try:
        with _open_maybe_gz(path) as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"Cannot read IDX file {path}: {e}") from None
    if len(data) < 4:
        raise DataError(f"IDX file {path} is too short to hold a header.")
    magic = int.from_bytes(data[:4], "big")
    ndim = magic & 0xFF
    ok = (magic >> 8) == 0x08 and 1 <= ndim <= 4
    if not ok or (expected_magic is not None and magic != expected_magic):
        want = f"0x{expected_magic:08x}" if expected_magic else "0x000008NN"
        raise DataError(
            f"IDX file {path} has a wrong magic number: expected {want} "
            f"(unsigned bytes). Received: 0x{magic:08x}"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"IDX file {path} has a truncated header.")
    dims = [
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    ]
    expected = int(np.prod(dims))
    payload = len(data) - header
    if payload < expected:
        raise DataError(
            f"IDX file {path} is truncated: the header promises {dims} = "
            f"{expected} bytes of data but only {payload} follow."
        )
    arr = np.frombuffer(data, np.uint8, count=expected, offset=header)
    return arr.reshape(dims)


def read_idx_count(path):
    """Reads only the number of items from an IDX header (cheap)."""
    with _open_maybe_gz(path) as f:
        head = f.read(8)
    if len(head) < 8:
        raise DataError(f"IDX file {path} is too short to hold a header.")
    return int.from_bytes(head[4:8], "big")


def _find_idx(directory, split, what):
    prefixes = ("train",) if split == "train" else ("t10k", "test")
    ndim = 3 if what == "images" else 1
    for name in sorted(os.listdir(directory)):
        stem = name[:-3] if name.endswith(".gz") else name
        for prefix in prefixes:
            if stem.endswith(f"{prefix}-{what}-idx{ndim}-ubyte"):
                return os.path.join(directory, name)
    return None


def idx_files(directory):
    """Returns `{split: (images_path, labels_path)}` for an IDX directory,
    or `None` when one of the four files is missing."""
    files = {}
    for split in ("train", "test"):
        images = _find_idx(directory, split, "images")
        labels = _find_idx(directory, split, "labels")
        if images is None or labels is None:
            return None
        files[split] = (images, labels)
    return files


def read_idx_split(images_path, labels_path, emnist=False):
    """Reads one split of an IDX data set into `(images NHWC, labels)`."""
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC).astype(np.int32)
    if len(images) != len(labels):
        raise DataError(
            f"IDX files disagree: {images_path} holds {len(images)} images "
            f"but {labels_path} holds {len(labels)} labels."
        )
    if emnist:  # EMNIST stores images transposed and letters as 1..26.
        images = images.transpose(0, 2, 1)
        labels = labels - 1
    return np.ascontiguousarray(images[..., None]), labels


def read_idx_dir(directory, split, validation_size, name, class_names):
    """Reads `split` of the IDX data set in `directory` as an `ArraySplit`."""
    files = idx_files(directory)
    if files is None:
        raise DataError(
            f"{directory} does not hold the four IDX files (train/test "
            "images and labels)."
        )
    sizes = {s: read_idx_count(files[s][0]) for s in files}
    plan = plan_split(name, sizes, split, validation_size)
    emnist = name.startswith("emnist")
    x, y = read_idx_split(*files[plan.read], emnist=emnist)
    return ArraySplit(
        name=name,
        source=f"{directory} (IDX files)",
        split=split,
        split_sizes=plan.sizes,
        class_names=list(class_names),
        images=plan.take(x),
        labels=plan.take(y),
    )
