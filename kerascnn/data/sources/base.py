"""What every source shares: the typed `Split`s a source returns, split
names, the data folder."""

import abc
import copy
import dataclasses
import os
import warnings

from kerascnn.data import progress
from kerascnn.errors import DataError, DataNotice
from kerascnn.lazy import LazyModule

np = LazyModule("numpy")

ENV_DATA_DIR = "KERASCNN_DATA_DIR"
SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {
    "dev": "validation",
    "val": "validation",
    "valid": "validation",
}


@dataclasses.dataclass(kw_only=True)
class Split:
    """One split of a data set, as a source found it; a source returns
    one of the subclasses, which says how its records are held.

    Attributes:
        name: data set name.
        source: human-readable description of where the data was found.
        split: canonical split name.
        split_sizes: dict split -> number of examples (before `limit`).
        class_names: list of class names (`None` for text).
    """

    name: str
    source: str
    split: str
    split_sizes: dict
    class_names: list = None


@dataclasses.dataclass(kw_only=True)
class ArraySplit(Split):
    """Images as uint8 pixel arrays (IDX, `.npz`, TFDS).

    Exactly one of `images` and `lazy` is set.

    Attributes:
        images: uint8 array `(N, H, W, C)` held in memory.
        labels: int32 array `(N,)` aligned with `images`.
        lazy: a `LazySplit` read on demand (`.npz`, TFDS); `images` and
            `labels` are then `None` (`lazy.load()` reads them).
    """

    images: "np.ndarray" = None
    labels: "np.ndarray" = None
    lazy: object = None


@dataclasses.dataclass(kw_only=True)
class FileSplit(Split):
    """Encoded image files (an image folder).

    Attributes:
        paths: list of image file paths.
        labels: int32 array `(N,)` aligned with `paths`.
    """

    paths: list
    labels: "np.ndarray"


@dataclasses.dataclass(kw_only=True)
class RecordSplit(Split):
    """TFRecord shards written by `kerascnn data convert`
    (`kerascnn.data.records`).

    Attributes:
        files: the split's shard paths.
        image_shape: `(H, W, C)` of every record image when the shard set
            was converted to one size, else `None`.
        encoding: `records.RAW` for shards of decoded pixels, else `None`
            (encoded images).
        channels: channels of the records (the manifest's).
    """

    files: list
    image_shape: tuple = None
    encoding: str = None
    channels: int = None


@dataclasses.dataclass(kw_only=True)
class TextSplit(Split):
    """ATIS `.iob` files.

    Attributes:
        text_path: `{"train": path, "test": path}`; the split is cut
            from them when read (`kerascnn.data.text.split_atis`).
    """

    text_path: dict


class LazySplit(abc.ABC):
    """A split of images that a source reads on demand instead of holding
    it: a memory-mapped `.npz` member, a TFDS split in its TFRecord files.

    The pipeline streams it when it is larger than the memory budget
    (`random_access` ones batch by index, like in-memory arrays; the
    others in order) and calls `load()` when it fits. Slicing
    (`split[:limit]`, a held-out tail) narrows it without reading.
    Subclasses implement `_load(start, stop, count)` (telling the
    `progress.Counter` `count` of every chunk) and `_elements(start,
    stop, shuffle_files, seed)`, and `_rows(indices)` when
    `random_access`.

    Attributes:
        description: where the arrays are, e.g. `"/data/x.npz (x_train)"`.
        image_shape: native `(H, W, C)` of every image (uint8).
    """

    random_access = False

    def __init__(self, description, image_shape, size):
        self.description = description
        self.image_shape = tuple(int(d) for d in image_shape)
        self.start, self.stop = 0, int(size)

    def __len__(self):
        return self.stop - self.start

    def __getitem__(self, key):
        start, stop, step = key.indices(len(self))
        if step != 1:
            raise ValueError("A LazySplit takes contiguous slices only.")
        part = copy.copy(self)
        part.start, part.stop = self.start + start, self.start + stop
        return part

    @property
    def decoded_bytes(self):
        """Size of the split held as uint8 pixels."""
        return len(self) * int(np.prod(self.image_shape))

    def load(self):
        """`(uint8 images (N, H, W, C), int32 labels (N,))` in memory;
        reported as a `progress` step."""
        label = f"Reading {self.description} into memory"
        with progress.counter(label, len(self), "images") as count:
            return self._load(self.start, self.stop, count)

    def elements(self, shuffle_files=False, seed=0):
        """A `tf.data.Dataset` of uint8 `(H, W, C)` images and int32
        labels, read as it is iterated: in order, or with the source's
        files in a seeded order reshuffled each epoch (`shuffle_files`,
        where the source has several files)."""
        return self._elements(self.start, self.stop, shuffle_files, seed)

    def rows(self, indices):
        """`(images, labels)` of the examples at `indices` (random
        access only)."""
        return self._rows(self.start + np.asarray(indices))

    @abc.abstractmethod
    def _load(self, start, stop, count):
        """`(images, labels)` of examples `start:stop`, read into memory."""

    @abc.abstractmethod
    def _elements(self, start, stop, shuffle_files=False, seed=0):
        """The `tf.data.Dataset` of examples `start:stop`."""

    def _rows(self, indices):
        raise TypeError(
            f"{self.description} is read in order only (random_access is "
            "False): it has no rows by index."
        )


def canonical_split(split):
    """Maps `"dev"` to `"validation"` and rejects unknown split names."""
    s = SPLIT_ALIASES.get(split, split)
    if s not in SPLITS:
        raise DataError(
            "`split` must be one of 'train', 'validation' (alias 'dev') or "
            f"'test'. Received: split={split!r}"
        )
    return s


def data_dir_from(data_dir=None):
    """Returns `data_dir`, else `$KERASCNN_DATA_DIR`, else `None` (`~` ok)."""
    path = data_dir or os.environ.get(ENV_DATA_DIR)
    return os.path.expanduser(path) if path else None


def warn_skipped(skipped, what):
    """Says in one `DataNotice` line what was skipped (never silently).

    Args:
        skipped: a count, or the names of the skipped files.
        what: why, e.g. `"that could not be decoded"`.
    """
    names = None if isinstance(skipped, int) else list(skipped)
    count = skipped if names is None else len(names)
    if not count:
        return
    shown = f": {name_list(names)}" if names else ""
    notice(f"Skipped {count} bad example(s) {what}{shown}.")


def name_list(names, shown=5):
    """`a.jpg, b.jpg and 3 more`: at most `shown` names, on one line."""
    names = list(names)
    text = ", ".join(names[:shown])
    more = len(names) - shown
    return f"{text} and {more} more" if more > 0 else text


def notice(text):
    """One line the user should see: a `DataNotice` warning, which the CLI
    prints as `note: ...` (no source path); Python shows it as a warning."""
    warnings.warn(DataNotice(text), stacklevel=3)


def as_labels(y, where):
    """Labels as a flat int32 array; rejects negative or non-integer ones."""
    y = np.asarray(y).reshape(-1)
    if not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
        raise DataError(
            f"Labels from {where} must be non-negative integers. "
            f"Received: dtype={y.dtype}"
        )
    return y.astype(np.int32)
