"""`.npz` files holding `x_train`, `y_train`, `x_test`, `y_test` (and
optionally `x_val`, `y_val`)."""

import os

import numpy as np

from kerascnn.data.sources.base import RawData, as_labels, as_nhwc
from kerascnn.data.sources.holdout import plan_split
from kerascnn.errors import DataError

REQUIRED = ("x_train", "y_train", "x_test", "y_test")
KEYS = {
    "train": ("x_train", "y_train"),
    "validation": ("x_val", "y_val"),
    "test": ("x_test", "y_test"),
}


def read_npz(path, split, validation_size=None):
    """Reads one split of an `.npz` file as `RawData` of kind `"arrays"`."""
    try:
        data = np.load(path)
    except (OSError, ValueError) as e:
        raise DataError(f"Cannot read .npz file {path}: {e}") from None
    missing = [k for k in REQUIRED if k not in data.files]
    if missing:
        raise DataError(
            f".npz file {path} must hold arrays {list(REQUIRED)}; missing "
            f"{missing}. Received arrays: {sorted(data.files)}"
        )
    present = {
        s: keys for s, keys in KEYS.items() if set(keys) <= set(data.files)
    }
    sizes = {s: len(data[x]) for s, (x, _) in present.items()}
    plan = plan_split(path, sizes, split, validation_size)
    x_key, y_key = present[plan.read]
    num_classes = max(int(np.max(data[y])) for _, y in present.values()) + 1
    where = f"{path} (.npz)"
    return RawData(
        os.path.basename(path), "arrays", where, split, plan.sizes,
        [str(i) for i in range(num_classes)],
        images=as_nhwc(plan.take(data[x_key]), path),
        labels=as_labels(plan.take(data[y_key]), path),
    )  # fmt: skip
