"""Where data sets come from: local files, TFDS and the ATIS mirror.

A source turns a data set name into raw records and decodes nothing
expensive: IDX files become uint8 numpy arrays (the payload is already raw
pixels), image folders become lists of file paths, `.npz` files and TFDS
data sets become `LazySplit`s (read into memory or streamed when the
pipeline asks), ATIS becomes the two `.iob` file paths. Each comes back
as a typed split (`base`): an `ArraySplit`, `FileSplit`, `RecordSplit`
(shards of `kerascnn data convert`) or `TextSplit`.

One module per format (`idx`, `image_folder`, `npz`, `tfds`, `atis`), one
rule for holding out a validation split (`holdout`) and one for turning a
name into a place (`resolve`). Resolution order for a built-in name such as
`"mnist"`:

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
`y_val`). A path may start with `~`.
"""

from kerascnn.data.sources import tfds  # noqa: F401  (tests patch it)
from kerascnn.data.sources.atis import (
    ATIS_DEV_SIZE,
    ATIS_FILES,
    ATIS_URL,
    ENV_ATIS_URL,
    atis_cache_dir,
    download_atis,
)
from kerascnn.data.sources.base import (
    ENV_DATA_DIR,
    SPLIT_ALIASES,
    SPLITS,
    ArraySplit,
    FileSplit,
    LazySplit,
    RecordSplit,
    Split,
    TextSplit,
    canonical_split,
    data_dir_from,
    name_list,
    notice,
    warn_skipped,
)
from kerascnn.data.sources.catalog import KNOWN, KnownDataset, list_datasets
from kerascnn.data.sources.holdout import (
    SplitPlan,
    plan_split,
    validation_count,
)
from kerascnn.data.sources.idx import (
    idx_files,
    read_idx,
    read_idx_count,
    read_idx_split,
)
from kerascnn.data.sources.image_folder import (
    folder_layout,
    interleave_classes,
    read_image_folder,
    scan_class_folders,
)
from kerascnn.data.sources.npz import read_npz
from kerascnn.data.sources.resolve import (
    Location,
    locate,
    read,
    resolve_source,
)
from kerascnn.data.sources.tfds import parse_tfds_name, read_tfds

__all__ = [
    "ATIS_DEV_SIZE",
    "ATIS_FILES",
    "ATIS_URL",
    "ENV_ATIS_URL",
    "ENV_DATA_DIR",
    "KNOWN",
    "SPLITS",
    "SPLIT_ALIASES",
    "KnownDataset",
    "ArraySplit",
    "FileSplit",
    "LazySplit",
    "Location",
    "RecordSplit",
    "Split",
    "TextSplit",
    "SplitPlan",
    "atis_cache_dir",
    "canonical_split",
    "data_dir_from",
    "download_atis",
    "folder_layout",
    "idx_files",
    "interleave_classes",
    "list_datasets",
    "locate",
    "parse_tfds_name",
    "plan_split",
    "read",
    "read_idx",
    "read_idx_count",
    "read_idx_split",
    "read_image_folder",
    "read_npz",
    "read_tfds",
    "resolve_source",
    "scan_class_folders",
    "validation_count",
    "warn_skipped",
    "notice",
    "name_list",
]
