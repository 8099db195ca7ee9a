"""Name -> source: the one place that decides where a data set is read from.

`locate` finds the place without reading anything; `read` reads one split
from it and `resolve_source` describes it, so the two cannot disagree.
"""

import dataclasses
import os

from kerascnn.data.sources.atis import atis_cache_dir, local_atis_files
from kerascnn.data.sources.atis import read_atis as _read_atis_files
from kerascnn.data.sources.base import (
    ENV_DATA_DIR,
    canonical_split,
    data_dir_from,
)
from kerascnn.data.sources.catalog import KNOWN, list_datasets
from kerascnn.data.sources.idx import idx_files, read_idx_dir
from kerascnn.data.sources.image_folder import read_image_folder
from kerascnn.data.sources.npz import read_npz
from kerascnn.data.sources.tfds import parse_tfds_name, read_tfds
from kerascnn.data.sources.tfrecord import is_record_set, read_records
from kerascnn.errors import DataError

IMAGENET_NAMES = ("imagenet", "imagenet2012", "imagenet-1k", "ilsvrc2012")
IMAGENET_OFFLINE = (
    "ImageNet cannot be downloaded here (it is not downloadable offline, "
    "and its licence needs a manual download). Point --dataset at a local "
    "copy: an image folder <root>/train/<class>/*.JPEG (plus val/ or "
    "test/), or shards made from it with `kerascnn data convert ROOT "
    "OUT_DIR`. Example: kerascnn fit resnet50 --dataset /data/imagenet"
)


@dataclasses.dataclass(frozen=True)
class Location:
    """Where a data set name points, found without reading it.

    Attributes:
        kind: `"idx"`, `"image_folder"`, `"records"`, `"npz"`, `"tfds"` or
            `"atis"`.
        path: the folder or file; the TFDS name for `"tfds"`; `None` for
            ATIS files still to download.
        name: the data set name records are reported under.
        description: a human string such as `"/data/mnist (IDX files)"`.
        known: the `KnownDataset` of a built-in name, else `None`.
        looked_for: local places tried before falling back to TFDS.
    """

    kind: str
    path: str
    name: str
    description: str
    known: object = None
    looked_for: tuple = ()


def _local_dir(known, root):
    for d in known.local_dirs:
        path = os.path.join(root, d)
        if os.path.isdir(path):
            return path
    return None


def _locate_known(known, root):
    directory = _local_dir(known, root) if root else None
    if known.kind == "atis":
        if directory and local_atis_files(directory):
            desc = f"{directory} (ATIS .iob files)"
            return Location("atis", directory, known.name, desc, known)
        desc = f"{atis_cache_dir()} (ATIS, download)"
        return Location("atis", None, known.name, desc, known)
    if directory and known.kind == "idx" and idx_files(directory):
        desc = f"{directory} (IDX files)"
        return Location("idx", directory, known.name, desc, known)
    if directory and known.kind == "image_folder":
        desc = f"{directory} (image folder)"
        return Location("image_folder", directory, known.name, desc, known)
    if root:
        what = "4 IDX files" if known.kind == "idx" else "image folder"
        tried = f"{os.path.join(root, known.local_dirs[0])}/ ({what})"
    else:
        tried = f"no local directory (data_dir and ${ENV_DATA_DIR} unset)"
    return Location(
        "tfds", known.tfds_name, known.name, f"tfds:{known.tfds_name}",
        known, (tried,),
    )  # fmt: skip


def locate(name, data_dir=None):
    """Finds where `name` would be read from, without reading it.

    Order for a built-in name: `<data_dir>/<local dir>/` (`data_dir` or
    `$KERASCNN_DATA_DIR`), then TFDS (ATIS: a download).

    Raises:
        DataError: not a string, or a name that matches nothing.
    """
    if not isinstance(name, str) or not name:
        raise DataError(
            f"`name` must be a non-empty string. Received: name={name!r}"
        )
    if name in KNOWN:
        return _locate_known(KNOWN[name], data_dir_from(data_dir))
    if name.startswith("tfds:"):
        where = f"tfds:{parse_tfds_name(name)}"
        return Location("tfds", where[len("tfds:") :], where, where)
    path = os.path.expanduser(name)
    if os.path.isfile(path) and path.endswith(".npz"):
        return Location("npz", path, os.path.basename(path), f"{path} (.npz)")
    if os.path.isdir(path) and is_record_set(path):
        desc = f"{path} (TFRecord shards)"
        return Location("records", path, path, desc)
    if os.path.isdir(path):
        return Location("image_folder", path, path, f"{path} (image folder)")
    if name.lower() in IMAGENET_NAMES:
        raise DataError(IMAGENET_OFFLINE)
    raise DataError(
        f"Unknown data set {name!r}: not a built-in name ({list_datasets()}), "
        "not 'tfds:<name>[:<config>]', and not an existing image folder or "
        ".npz file."
    )


def _read_tfds(loc, split, validation_size):
    raw = read_tfds(loc.path, split, validation_size, loc.looked_for, loc.name)
    names = loc.known.class_names if loc.known else None
    if names and len(names) == len(raw.class_names):
        raw.class_names = list(names)
    return raw


_READERS = {
    "idx": lambda loc, split, vs: read_idx_dir(
        loc.path, split, vs, loc.name, loc.known.class_names
    ),
    "image_folder": lambda loc, split, vs: read_image_folder(
        loc.path, split, vs, loc.name
    ),
    "records": lambda loc, split, vs: read_records(
        loc.path, split, vs, loc.name
    ),
    "npz": lambda loc, split, vs: read_npz(loc.path, split, vs),
    "tfds": _read_tfds,
    "atis": lambda loc, split, vs: _read_atis_files(loc.path, split, loc.name),
}


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
        A `Split`: an `ArraySplit`, `FileSplit`, `RecordSplit` or
        `TextSplit`.

    Raises:
        DataError: unknown name, missing files or unreadable data.
    """
    split = canonical_split(split)
    loc = locate(name, data_dir)
    return _READERS[loc.kind](loc, split, validation_size)


def resolve_source(name, data_dir=None):
    """Describes where `name` would be read from, without reading it.

    Returns:
        A human string such as `"/data/mnist (IDX files)"` or `"tfds:mnist"`.
    """
    return locate(name, data_dir).description
