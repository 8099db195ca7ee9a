"""Where data sets come from: local files, TFDS and the ATIS mirror.

A source turns a data set name into raw records and decodes nothing
expensive: IDX files become uint8 numpy arrays (the payload is already raw
pixels), image folders become lists of file paths, TFDS data sets become
numpy arrays (read once), ATIS becomes the two `.iob` file paths.

Resolution order for a built-in name such as `"mnist"`:

1. `<data_dir>/<local dir>/` where `data_dir` is the argument or, if it is
   `None`, the environment variable `KERASCNN_DATA_DIR`;
2. the TFDS cache (`~/tensorflow_datasets` or `TFDS_DATA_DIR`);
3. a TFDS download (ATIS: a `keras.utils.get_file` download of the two
   `.iob` files, verified by md5).

Local directory names (under `data_dir`):

| name             | local directory          | files                        |
| ---------------- | ------------------------ | ---------------------------- |
| `mnist`          | `mnist/`                 | 4 IDX files (`.gz` or not)   |
| `fashion_mnist`  | `fashion_mnist/`         | 4 IDX files                  |
| `kmnist`         | `kmnist/`                | 4 IDX files                  |
| `emnist/letters` | `emnist_letters/`        | 4 IDX files (1)              |
| `cifar10`        | `cifar10/`               | `{train,test}/<class>/*.jpg` |
| `atis`           | `atis/`                  | `atis.*.w-intent.iob`        |

(1) EMNIST's own `emnist-letters-train-images-idx3-ubyte.gz` names work;
images are transposed to upright and labels 1..26 shifted to 0..25 (a..z).

Other accepted names: `tfds:<name>[:<config>]`, a path to an image folder
(`<root>/<split>/<class>/*` or `<root>/<class>/*`) and a path to an `.npz`
file holding `x_train`, `y_train`, `x_test`, `y_test` (optionally `x_val`,
`y_val`).
"""

import dataclasses
import gzip
import os
import socket
import warnings

import numpy as np

from kerascnn.errors import DataError

ENV_DATA_DIR = "KERASCNN_DATA_DIR"
ENV_ATIS_URL = "KERASCNN_ATIS_URL"
ATIS_URL = "https://raw.githubusercontent.com/yvchen/JointSLU/master/data/"
ATIS_FILES = {
    "train": ("atis.train.w-intent.iob", "ede48c4eb34493de7d66ac4657624484"),
    "test": ("atis.test.w-intent.iob", "1b4c83c287fd5ec932524a68e21c27f3"),
}
ATIS_DEV_SIZE = 500
FOLDER_VALIDATION_FRACTION = 0.2
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")
SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {
    "dev": "validation",
    "val": "validation",
    "valid": "validation",
}

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = [
    "t-shirt_top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle_boot",
]  # fmt: skip
KMNIST_CLASSES = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]
LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)]
CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class KnownDataset:
    """A built-in data set name.

    Attributes:
        name: the public name, e.g. `"emnist/letters"`.
        kind: `"idx"`, `"image_folder"` or `"atis"`: the local format.
        local_dirs: directory names tried under the data directory.
        tfds_name: the TFDS name used when no local copy exists.
        class_names: canonical class names (`None`: read from the source).
    """

    name: str
    kind: str
    local_dirs: tuple
    tfds_name: str = None
    class_names: list = None


KNOWN = {
    k.name: k
    for k in [
        KnownDataset("mnist", "idx", ("mnist",), "mnist", MNIST_CLASSES),
        KnownDataset(
            "fashion_mnist", "idx", ("fashion_mnist", "fashion-mnist"),
            "fashion_mnist", FASHION_CLASSES,
        ),
        KnownDataset("kmnist", "idx", ("kmnist",), "kmnist", KMNIST_CLASSES),
        KnownDataset(
            "emnist/letters", "idx",
            ("emnist_letters", "emnist-letters", "emnist/letters"),
            "emnist/letters", LETTERS,
        ),
        KnownDataset(
            "cifar10", "image_folder", ("cifar10", "cifar-10"), "cifar10",
            CIFAR10_CLASSES,
        ),
        KnownDataset("atis", "atis", ("atis",)),
    ]
}  # fmt: skip


@dataclasses.dataclass
class RawData:
    """Raw records of one split, as a source found them.

    Exactly one of `images`, `paths`, `text_path` is set.

    Attributes:
        name: data set name.
        kind: `"arrays"`, `"files"` or `"text"`.
        source: human-readable description of where the data was found.
        split: canonical split name.
        split_sizes: dict split -> number of examples (before `limit`).
        class_names: list of class names (`None` for text).
        images: uint8 array `(N, H, W, C)` for `"arrays"`.
        labels: int32 array `(N,)` for `"arrays"` and `"files"`.
        paths: list of image file paths for `"files"`.
        text_path: `.iob` files `{"train": path, "test": path}` for text.
    """

    name: str
    kind: str
    source: str
    split: str
    split_sizes: dict
    class_names: list = None
    images: np.ndarray = None
    labels: np.ndarray = None
    paths: list = None
    text_path: dict = None


def canonical_split(split):
    """Maps `"dev"` to `"validation"` and rejects unknown split names."""
    s = SPLIT_ALIASES.get(split, split)
    if s not in SPLITS:
        raise DataError(
            "`split` must be one of 'train', 'validation' (alias 'dev') or "
            f"'test'. Received: split={split!r}"
        )
    return s


def list_datasets():
    """Returns the built-in data set names."""
    return sorted(KNOWN)


def data_dir_from(data_dir=None):
    """Returns `data_dir`, else `$KERASCNN_DATA_DIR`, else `None`."""
    return data_dir or os.environ.get(ENV_DATA_DIR) or None


# ======================== IDX files ========================


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
    """Returns `{split: (images_path, labels_path)}` for an IDX directory."""
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
    images = read_idx(images_path, 0x803)
    labels = read_idx(labels_path, 0x801).astype(np.int32)
    if len(images) != len(labels):
        raise DataError(
            f"IDX files disagree: {images_path} holds {len(images)} images "
            f"but {labels_path} holds {len(labels)} labels."
        )
    if emnist:  # EMNIST stores images transposed and letters as 1..26.
        images = images.transpose(0, 2, 1)
        labels = labels - 1
    return np.ascontiguousarray(images[..., None]), labels


# ======================== Image folders ========================


def _list_images(class_dir):
    return sorted(
        e.path
        for e in os.scandir(class_dir)
        if e.is_file() and not e.name.startswith(".")
    )


def scan_class_folders(root):
    """Returns `{class_name: [file paths]}` for `<root>/<class>/*`.

    Raises:
        DataError: no class folders, or an empty class folder.
    """
    classes = sorted(
        e.name
        for e in os.scandir(root)
        if e.is_dir() and not e.name.startswith(".")
    )
    if not classes:
        raise DataError(
            f"Image folder {root} has no class sub-folders; expected "
            "<root>/<class>/*.jpg or <root>/<split>/<class>/*.jpg."
        )
    found = {}
    for c in classes:
        files = _list_images(os.path.join(root, c))
        if not files:
            raise DataError(
                f"Class folder {os.path.join(root, c)} is empty; every class "
                "needs at least one image."
            )
        found[c] = files
    return found


def interleave_classes(by_class, class_names):
    """Orders files round-robin over classes, so any prefix is balanced."""
    paths, labels = [], []
    lists = [by_class[c] for c in class_names]
    for i in range(max(len(x) for x in lists)):
        for label, files in enumerate(lists):
            if i < len(files):
                paths.append(files[i])
                labels.append(label)
    return paths, np.asarray(labels, np.int32)


def folder_layout(root):
    """Returns the split directories of an image folder, or `None`.

    `{"train": dir, "test": dir, "validation": dir}` (those that exist) when
    `root` has split sub-folders; `None` for the flat `<root>/<class>/*`.
    """
    names = {"train", "test", "validation", "val", "dev", "valid"}
    subdirs = {
        e.name for e in os.scandir(root) if e.is_dir() and e.name in names
    }
    if "train" not in subdirs:
        return None
    layout = {}
    for d in sorted(subdirs):
        layout[SPLIT_ALIASES.get(d, d)] = os.path.join(root, d)
    return layout


def _check_same_classes(root, per_split):
    ref_split = "train"
    ref = list(per_split[ref_split])
    for split, by_class in per_split.items():
        if list(by_class) != ref:
            missing = sorted(set(ref) - set(by_class))
            extra = sorted(set(by_class) - set(ref))
            raise DataError(
                f"Image folder {root}: the class folders of '{split}' do not "
                f"match those of '{ref_split}' (missing: {missing}, extra: "
                f"{extra}). Every split needs the same class folders."
            )


def validation_count(n, validation_size, default):
    """Turns `validation_size` (count, fraction or `None`) into a count."""
    size = default if validation_size is None else validation_size
    if isinstance(size, float) and 0 < size < 1:
        size = int(round(n * size))
    if not isinstance(size, (int, np.integer)) or not 0 < size < n:
        raise DataError(
            "`validation_size` must be a count in [1, number of training "
            f"examples - 1] = [1, {n - 1}] or a fraction in (0, 1). "
            f"Received: validation_size={validation_size!r}"
        )
    return int(size)


def _carve(items, split, n_val):
    """Splits `items` into train (all but the last n_val) and validation."""
    if split == "validation":
        return items[-n_val:]
    return items[:-n_val]


def read_image_folder(root, split, validation_size=None, name=None):
    """Lists an image folder; returns `RawData` of kind `"files"`."""
    layout = folder_layout(root)
    desc = f"{root} (image folder)"
    if layout is None:
        by_class = scan_class_folders(root)
        classes = list(by_class)
        paths, labels = interleave_classes(by_class, classes)
        perm = np.random.default_rng(1337).permutation(len(paths))
        paths = [paths[i] for i in perm]
        labels = labels[perm]
        n_val = validation_count(
            len(paths), validation_size, FOLDER_VALIDATION_FRACTION
        )
        sizes = {"train": len(paths) - n_val, "validation": n_val}
        if split == "test":
            raise DataError(
                f"Image folder {root} has no 'test' split (it is laid out "
                "as <root>/<class>/*); use split='train' or 'validation'."
            )
        return RawData(
            name or root, "files", desc, split, sizes, classes,
            paths=_carve(paths, split, n_val),
            labels=_carve(labels, split, n_val),
        )  # fmt: skip
    per_split = {s: scan_class_folders(d) for s, d in layout.items()}
    _check_same_classes(root, per_split)
    classes = list(per_split["train"])
    sizes = {s: sum(map(len, b.values())) for s, b in per_split.items()}
    carve = "validation" not in layout and (
        split == "validation" or validation_size
    )
    if split not in sizes and not carve:
        raise DataError(
            f"Image folder {root} has no '{split}' split"
            + (
                "; pass `validation_size=N` to hold out the last N training "
                "images. Received: validation_size=None"
                if split == "validation"
                else "."
            )
        )
    source_split = "train" if carve and split != "test" else split
    paths, labels = interleave_classes(per_split[source_split], classes)
    if carve:
        n_val = validation_count(sizes["train"], validation_size, None)
        sizes["validation"] = n_val
        sizes["train"] -= n_val
        if split != "test":
            paths = _carve(paths, split, n_val)
            labels = _carve(labels, split, n_val)
    return RawData(
        name or root, "files", desc, split, sizes, classes,
        paths=paths, labels=labels,
    )  # fmt: skip


# ======================== .npz ========================


def read_npz(path, split, validation_size=None):
    """Reads an `.npz` with `x_train`, `y_train`, `x_test`, `y_test`."""
    try:
        data = np.load(path)
    except (OSError, ValueError) as e:
        raise DataError(f"Cannot read .npz file {path}: {e}") from None
    needed = ["x_train", "y_train", "x_test", "y_test"]
    missing = [k for k in needed if k not in data.files]
    if missing:
        raise DataError(
            f".npz file {path} must hold arrays {needed}; missing {missing}. "
            f"Received arrays: {sorted(data.files)}"
        )
    arrays = {
        "train": (data["x_train"], data["y_train"]),
        "test": (data["x_test"], data["y_test"]),
    }
    if "x_val" in data.files and "y_val" in data.files:
        arrays["validation"] = (data["x_val"], data["y_val"])
    x, y = _split_arrays(arrays, split, validation_size, path)
    sizes = _array_sizes(arrays, validation_size)
    num_classes = int(max(np.max(a[1]) for a in arrays.values())) + 1
    classes = [str(i) for i in range(num_classes)]
    return RawData(
        os.path.basename(path), "arrays", f"{path} (.npz)", split, sizes,
        classes, images=_as_nhwc(x, path), labels=_as_labels(y, path),
    )  # fmt: skip


def _as_nhwc(x, where):
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
        raise DataError(
            f"Images from {where} must have shape (N, H, W) or (N, H, W, C) "
            f"with C in (1, 3, 4). Received: shape={x.shape}"
        )
    if x.dtype != np.uint8:
        if x.max(initial=0) <= 1.0:
            x = x * 255.0
        x = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    return x


def _as_labels(y, where):
    y = np.asarray(y).reshape(-1)
    if not np.issubdtype(y.dtype, np.integer) or (y < 0).any():
        raise DataError(
            f"Labels from {where} must be non-negative integers. "
            f"Received: dtype={y.dtype}"
        )
    return y.astype(np.int32)


def _array_sizes(arrays, validation_size):
    sizes = {s: len(a[0]) for s, a in arrays.items()}
    if "validation" not in arrays and validation_size:
        n_val = validation_count(sizes["train"], validation_size, None)
        sizes["train"] -= n_val
        sizes["validation"] = n_val
    return sizes


def _split_arrays(arrays, split, validation_size, where):
    """Picks (x, y) of `split`, carving validation off train if needed."""
    if split in arrays and not (
        split == "train" and validation_size and "validation" not in arrays
    ):
        return arrays[split]
    if split == "validation" and validation_size is None:
        raise DataError(
            f"{where} has no validation split; pass `validation_size=N` to "
            "hold out the last N training examples. Received: "
            "validation_size=None"
        )
    if split not in ("train", "validation"):
        raise DataError(f"{where} has no '{split}' split.")
    x, y = arrays["train"]
    n_val = validation_count(len(x), validation_size, None)
    return _carve(x, split, n_val), _carve(y, split, n_val)


# ======================== TFDS ========================


def network_available(host="storage.googleapis.com", port=443, timeout=3.0):
    """Returns whether `host:port` answers within `timeout` seconds."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def parse_tfds_name(name):
    """`"tfds:mnist"` -> `"mnist"`; `"tfds:emnist:letters"` ->
    `"emnist/letters"`."""
    parts = name[len("tfds:") :].split(":")
    if not parts[0] or len(parts) > 2 or not all(parts):
        raise DataError(
            "A TFDS name must look like 'tfds:<name>' or "
            f"'tfds:<name>:<config>'. Received: name={name!r}"
        )
    return "/".join(parts)


def tfds_builder(tfds_name, looked_for=()):
    """Returns a prepared TFDS builder, downloading it if needed.

    Args:
        tfds_name: e.g. `"mnist"` or `"emnist/letters"`.
        looked_for: local places already tried, for the error message.

    Raises:
        DataError: unknown TFDS name, or not cached and no network.
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(tfds_name)
    except Exception as e:  # TFDS raises several types for unknown names.
        raise DataError(
            f"TFDS does not know the data set {tfds_name!r}: "
            f"{str(e).splitlines()[0]}"
        ) from None
    if builder.is_prepared():
        return builder
    tried = list(looked_for) + [f"the TFDS cache at {builder.data_dir}"]
    if not network_available():
        raise DataError(
            f"Data set {tfds_name!r} not found and TFDS cannot download it "
            f"(no network). Looked in: {'; '.join(tried)}. Point "
            f"`data_dir=` or ${ENV_DATA_DIR} at a folder holding a local "
            "copy, or prepare it with TFDS on a machine with internet."
        )
    try:
        builder.download_and_prepare()
    except Exception as e:  # Download failures come in many types.
        raise DataError(
            f"TFDS could not download {tfds_name!r} ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}). Looked in: "
            f"{'; '.join(tried)}. Point `data_dir=` or ${ENV_DATA_DIR} at "
            "a local copy."
        ) from None
    return builder


def _tfds_arrays(builder, tfds_split):
    import tensorflow_datasets as tfds

    image_key, label_key = builder.info.supervised_keys or ("image", "label")
    ds = builder.as_dataset(split=tfds_split, shuffle_files=False)
    ds = ds.map(lambda ex: (ex[image_key], ex[label_key])).batch(4096)
    xs, ys = [], []
    for x, y in tfds.as_numpy(ds):
        xs.append(x)
        ys.append(y)
    if not xs:
        raise DataError(f"TFDS split {builder.name}:{tfds_split} is empty.")
    return np.concatenate(xs), np.concatenate(ys)


def read_tfds(tfds_name, split, validation_size=None, looked_for=(),
              display_name=None):  # fmt: skip
    """Reads one split of a TFDS image classification data set to arrays."""
    builder = tfds_builder(tfds_name, looked_for)
    known = dict(builder.info.splits.items())
    tfds_splits = {"train": "train", "test": "test"}
    if "validation" in known:
        tfds_splits["validation"] = "validation"
    arrays = {s: None for s in tfds_splits}
    wanted = split if split in tfds_splits else "train"
    if split == "train" and validation_size and "validation" not in known:
        wanted = "train"
    arrays[wanted] = _tfds_arrays(builder, tfds_splits[wanted])
    for s in arrays:
        if arrays[s] is None:  # Only sizes are needed for the others.
            n = known[s].num_examples if s in known else 0
            arrays[s] = (np.zeros((n, 0)), np.zeros((n,)))
    where = f"tfds:{tfds_name}"
    x, y = _split_arrays(arrays, split, validation_size, where)
    sizes = _array_sizes(arrays, validation_size)
    label = builder.info.features[builder.info.supervised_keys[1]]
    names = getattr(label, "names", None) or [
        str(i) for i in range(label.num_classes)
    ]
    return RawData(
        display_name or where, "arrays", where, split, sizes, list(names),
        images=_as_nhwc(x, where), labels=_as_labels(y, where),
    )  # fmt: skip


# ======================== ATIS ========================


def atis_cache_dir():
    """The folder ATIS downloads go to: `~/.keras/datasets/kerascnn_atis`."""
    return os.path.join(
        os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras")),
        "datasets",
        "kerascnn_atis",
    )


def download_atis(base_url=None, cache_dir=None):
    """Downloads the ATIS `.iob` files with md5 checks.

    Args:
        base_url: folder URL holding the two files (`file://` works);
            defaults to `$KERASCNN_ATIS_URL`, then `ATIS_URL`.
        cache_dir: where to keep them; defaults to `atis_cache_dir()`.

    Returns:
        `{"train": path, "test": path}`.

    Raises:
        DataError: a download failed or a checksum did not match.
    """
    import keras

    base = base_url or os.environ.get(ENV_ATIS_URL) or ATIS_URL
    base = base if base.endswith("/") else base + "/"
    cache_dir = cache_dir or atis_cache_dir()
    os.makedirs(cache_dir, exist_ok=True)  # else get_file falls back to /tmp
    paths = {}
    for split, (fname, md5) in ATIS_FILES.items():
        try:
            paths[split] = keras.utils.get_file(
                fname, base + fname, file_hash=md5, hash_algorithm="md5",
                cache_dir=cache_dir, cache_subdir="",
            )  # fmt: skip
        except Exception as e:  # get_file raises ValueError or URL errors.
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise DataError(
                f"Could not download ATIS file {fname} from {base + fname} "
                f"(md5 {md5}): {msg}. Set ${ENV_ATIS_URL} to a mirror, or put "
                f"the files in <data_dir>/atis/ and set ${ENV_DATA_DIR}."
            ) from None
    return paths


def find_atis(data_dir=None, base_url=None):
    """Returns `({"train": path, "test": path}, source description)`."""
    root = data_dir_from(data_dir)
    if root:
        d = os.path.join(root, "atis")
        paths = {s: os.path.join(d, f) for s, (f, _) in ATIS_FILES.items()}
        if all(os.path.isfile(p) for p in paths.values()):
            return paths, f"{d} (ATIS .iob files)"
    paths = download_atis(base_url)
    return paths, f"{os.path.dirname(paths['train'])} (ATIS, downloaded)"


# ======================== Resolution ========================


def _local_dir(known, root):
    for d in known.local_dirs:
        path = os.path.join(root, d)
        if os.path.isdir(path):
            return path
    return None


def _read_local_idx(known, directory, split, validation_size):
    files = idx_files(directory)
    if files is None:
        return None
    emnist = known.name.startswith("emnist")
    sizes = {s: read_idx_count(files[s][0]) for s in files}
    if split == "validation" or (split == "train" and validation_size):
        n_val = (
            validation_count(sizes["train"], validation_size, None)
            if (validation_size)
            else None
        )
        if n_val is None:
            raise DataError(
                f"{known.name} has no validation split; pass "
                "`validation_size=N` to hold out the last N training "
                "examples. Received: validation_size=None"
            )
        x, y = read_idx_split(*files["train"], emnist=emnist)
        x, y = _carve(x, split, n_val), _carve(y, split, n_val)
        sizes["validation"] = n_val
        sizes["train"] -= n_val
    else:
        x, y = read_idx_split(*files[split], emnist=emnist)
    return RawData(
        known.name, "arrays", f"{directory} (IDX files)", split, sizes,
        list(known.class_names), images=x, labels=y,
    )  # fmt: skip


def _read_known(known, split, data_dir, validation_size):
    root = data_dir_from(data_dir)
    looked_for = []
    if known.kind == "atis":
        paths, desc = find_atis(data_dir)
        return RawData(known.name, "text", desc, split, {}, text_path=paths)
    if root:
        directory = _local_dir(known, root)
        looked_for.append(
            f"{os.path.join(root, known.local_dirs[0])}/ "
            + ("(4 IDX files)" if known.kind == "idx" else "(image folder)")
        )
        if directory and known.kind == "idx":
            raw = _read_local_idx(known, directory, split, validation_size)
            if raw is not None:
                return raw
        elif directory:
            return read_image_folder(
                directory, split, validation_size, known.name
            )
    else:
        looked_for.append(
            f"no local directory (data_dir and ${ENV_DATA_DIR} unset)"
        )
    raw = read_tfds(
        known.tfds_name, split, validation_size, looked_for, known.name
    )
    if known.class_names and len(known.class_names) == len(raw.class_names):
        raw.class_names = list(known.class_names)
    return raw


def read(name, split="train", data_dir=None, validation_size=None):
    """Resolves `name` and returns the raw records of `split`.

    Args:
        name: a built-in name (see `list_datasets()`), `tfds:<name>[:<cfg>]`,
            a path to an image folder or a path to an `.npz` file.
        split: `"train"`, `"validation"` (alias `"dev"`) or `"test"`.
        data_dir: local data folder; defaults to `$KERASCNN_DATA_DIR`.
        validation_size: examples (or a fraction) held out of train for the
            validation split where the source has none.

    Returns:
        A `RawData`.

    Raises:
        DataError: unknown name, missing files or unreadable data.
    """
    split = canonical_split(split)
    if not isinstance(name, str) or not name:
        raise DataError(
            f"`name` must be a non-empty string. Received: {name!r}"
        )
    if name in KNOWN:
        return _read_known(KNOWN[name], split, data_dir, validation_size)
    if name.startswith("tfds:"):
        return read_tfds(parse_tfds_name(name), split, validation_size)
    path = os.path.expanduser(name)
    if os.path.isfile(path) and path.endswith(".npz"):
        return read_npz(path, split, validation_size)
    if os.path.isdir(path):
        return read_image_folder(path, split, validation_size)
    raise DataError(
        f"Unknown data set {name!r}: not a built-in name ({list_datasets()}), "
        "not 'tfds:<name>[:<config>]', and not an existing image folder or "
        ".npz file."
    )


def resolve_source(name, data_dir=None):
    """Describes where `name` would be read from, without reading it.

    Returns:
        A human string such as `"/data/mnist (IDX files)"` or `"tfds:mnist"`.
    """
    if name in KNOWN:
        known = KNOWN[name]
        root = data_dir_from(data_dir)
        if known.kind == "atis":
            if root and os.path.isdir(os.path.join(root, "atis")):
                return f"{os.path.join(root, 'atis')} (ATIS .iob files)"
            return f"{atis_cache_dir()} (ATIS, download)"
        directory = _local_dir(known, root) if root else None
        if directory and known.kind == "idx" and idx_files(directory):
            return f"{directory} (IDX files)"
        if directory and known.kind == "image_folder":
            return f"{directory} (image folder)"
        return f"tfds:{known.tfds_name}"
    if name.startswith("tfds:"):
        return f"tfds:{parse_tfds_name(name)}"
    if os.path.isfile(name) and name.endswith(".npz"):
        return f"{name} (.npz)"
    if os.path.isdir(name):
        return f"{name} (image folder)"
    raise DataError(
        f"Unknown data set {name!r}: not a built-in name ({list_datasets()}), "
        "not 'tfds:<name>[:<config>]', and not an existing image folder or "
        ".npz file."
    )


def warn_skipped(count, what):
    """Warns that `count` bad examples were skipped (never silently)."""
    if count:
        warnings.warn(
            f"Skipped {count} bad example(s) {what} (skip_bad=True).",
            stacklevel=3,
        )
