"""`.npz` files holding `x_train`, `y_train`, `x_test`, `y_test` (and
optionally `x_val`, `y_val`), read on demand.

Only the labels and the arrays' `.npy` headers are read up front; the
images are a `LazySplit` that the pipeline loads when it fits the memory
budget and streams otherwise:

* uncompressed (`np.savez`): the zip stores every array as a plain
  `.npy` file, so its bytes sit at a fixed offset of the `.npz`, and the
  images are memory-mapped there (`np.memmap`) and read row by row, in
  any order. `np.load(path, mmap_mode="r")` cannot do this for an
  `.npz` (it maps `.npy` files only, and reads a whole member when
  asked), hence the offset is taken from the zip's local file header.
* compressed (`np.savez_compressed`): deflated bytes cannot be mapped;
  the member is decompressed as a stream, `CHUNK_ROWS` images at a time.
"""

import os
import struct
import zipfile

from kerascnn.data.sources.base import ArraySplit, LazySplit, as_labels
from kerascnn.data.sources.holdout import plan_split
from kerascnn.errors import DataError
from kerascnn.lazy import LazyModule

np = LazyModule("numpy")
tf = LazyModule("tensorflow")

REQUIRED = ("x_train", "y_train", "x_test", "y_test")
KEYS = {
    "train": ("x_train", "y_train"),
    "validation": ("x_val", "y_val"),
    "test": ("x_test", "y_test"),
}
CHUNK_ROWS = 256


def _header_reader(version):
    """NumPy's reader of a `.npy` header of `version`, or `None`."""
    readers = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }
    return readers.get(version)


_LOCAL_HEADER = b"PK\x03\x04"


def _data_start(file, info):
    """Offset of a stored zip member's first byte: after its local file
    header, whose extra field may differ from the central directory's."""
    file.seek(info.header_offset)
    local = file.read(30)
    if local[:4] != _LOCAL_HEADER:
        raise DataError(f"{file.name}: a zip member header is damaged.")
    name_length, extra_length = struct.unpack("<HH", local[26:30])
    return info.header_offset + 30 + name_length + extra_length


def _members(path):
    """`{name: (shape, fortran_order, dtype, data offset or None)}` of
    the arrays in an `.npz`, from their headers (offset: uncompressed
    members only)."""
    found = {}
    try:
        with open(path, "rb") as file, zipfile.ZipFile(file) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = _header_reader(version)
                    if read_header is None:
                        raise ValueError(f"unsupported .npy version {version}")
                    shape, fortran, dtype = read_header(member)
                    header_size = member.tell()
                offset = None
                if info.compress_type == zipfile.ZIP_STORED:
                    offset = _data_start(file, info) + header_size
                found[info.filename[:-4]] = (shape, fortran, dtype, offset)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise DataError(f"Cannot read .npz file {path}: {e}") from None
    return found


def _nhwc_shape(shape, where):
    """The `(H, W, C)` of images stored with `shape` (`(N, H, W)` gets
    one channel)."""
    shape = tuple(shape) + ((1,) if len(shape) == 3 else ())
    if len(shape) != 4 or shape[-1] not in (1, 3, 4):
        raise DataError(
            f"Images from {where} must have shape (N, H, W) or (N, H, W, C) "
            f"with C in (1, 3, 4). Received: shape={shape}"
        )
    return shape[1:]


class NpzImages(LazySplit):
    """The images of one `.npz` member with their labels (see module)."""

    def __init__(self, path, key, header, labels):
        shape, fortran, dtype, offset = header
        super().__init__(f"{path} ({key})", _nhwc_shape(shape, path), shape[0])
        self.path, self.key, self.labels = path, key, labels
        self.dtype = np.dtype(dtype)
        self._add_channel = len(shape) == 3  # (N, H, W)
        self._scale = None
        self._mapped = None
        if offset is not None and not self.dtype.hasobject:
            order = "F" if fortran else "C"
            self._mapped = np.memmap(path, self.dtype, "r", offset, shape,
                                     order)  # fmt: skip
        self.random_access = self._mapped is not None

    def _to_uint8(self, x):
        """uint8 NHWC: floats in [0, 1] (over the whole array) are scaled to
        255, then rounded and clipped."""
        x = x[..., None] if self._add_channel else x
        if self.dtype == np.uint8:
            return np.ascontiguousarray(x)
        if self._scale is None:
            self._scale = 255.0 if self._max() <= 1.0 else 1.0
        return np.clip(np.rint(x * self._scale), 0, 255).astype(np.uint8)

    def _max(self):
        return max(
            (float(np.max(x, initial=0)) for x, _ in self._chunks(0, None)),
            default=0.0,
        )

    def _chunks(self, start, stop, convert=lambda x: x):
        """`(images, labels)` chunks of rows `start:stop`, in order."""
        stop = self.stop if stop is None else stop
        if self._mapped is not None:
            yield from self._slices(self._mapped, start, stop, convert)
            return
        with zipfile.ZipFile(self.path) as archive:
            with archive.open(f"{self.key}.npy") as member:
                version = np.lib.format.read_magic(member)
                shape, fortran, _ = _header_reader(version)(member)
                if fortran or self.dtype.hasobject:
                    x = np.lib.format.read_array(member)  # rare: all of it
                    yield from self._slices(x, start, stop, convert)
                    return
                row = int(np.prod(shape[1:])) * self.dtype.itemsize
                member.seek(member.tell() + start * row)  # decompresses
                for i in range(start, stop, CHUNK_ROWS):
                    n = min(CHUNK_ROWS, stop - i)
                    x = np.frombuffer(member.read(n * row), self.dtype)
                    x = x.reshape((n,) + tuple(shape[1:]))
                    yield convert(x), self.labels[i : i + n]

    def _slices(self, x, start, stop, convert):
        for i in range(start, stop, CHUNK_ROWS):
            j = min(i + CHUNK_ROWS, stop)
            yield convert(x[i:j]), self.labels[i:j]

    def _load(self, start, stop, count):
        images = np.empty((stop - start,) + self.image_shape, np.uint8)
        n = 0
        for x, _ in self._chunks(start, stop, self._to_uint8):
            images[n : n + len(x)] = x
            n += len(x)
            count.add(len(x))
        return images, self.labels[start:stop]

    def _rows(self, indices):
        return self._to_uint8(self._mapped[indices]), self.labels[indices]

    def _elements(self, start, stop, shuffle_files=False, seed=0):

        del shuffle_files, seed  # one file, read in order

        def chunks():
            yield from self._chunks(start, stop, self._to_uint8)

        return tf.data.Dataset.from_generator(
            chunks,
            output_signature=(
                tf.TensorSpec((None,) + self.image_shape, tf.uint8),
                tf.TensorSpec([None], tf.int32),
            ),
        ).unbatch()


def read_npz(path, split, validation_size=None):
    """One split of an `.npz` file: an `ArraySplit` whose images are an
    `NpzImages` (read on demand)."""
    members = _members(path)
    missing = [k for k in REQUIRED if k not in members]
    if missing:
        raise DataError(
            f".npz file {path} must hold arrays {list(REQUIRED)}; missing "
            f"{missing}. Received arrays: {sorted(members)}"
        )
    present = {s: keys for s, keys in KEYS.items() if set(keys) <= set(members)}
    sizes = {s: int(members[x][0][0]) for s, (x, _) in present.items()}
    plan = plan_split(path, sizes, split, validation_size)
    x_key, y_key = present[plan.read]
    with np.load(path) as data:
        labels = {y: as_labels(data[y], path) for _, y in present.values()}
    num_classes = max(int(np.max(y, initial=0)) for y in labels.values()) + 1
    images = NpzImages(path, x_key, members[x_key], labels[y_key])
    return ArraySplit(
        name=os.path.basename(path),
        source=f"{path} (.npz)",
        split=split,
        split_sizes=plan.sizes,
        class_names=[str(i) for i in range(num_classes)],
        lazy=plan.take(images),
    )
