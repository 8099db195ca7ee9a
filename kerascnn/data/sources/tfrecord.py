"""TFRecord shards written by `kerascnn data convert`: a manifest, then
`<root>/<split>/<split>-NNNNN-of-MMMMM.tfrecord` files of
`tf.train.Example`s (`image/encoded`, `image/class/label`,
`image/filename`, the feature names of TFDS and TF Model Garden; raw
pixel sets, manifest `"encoding": "raw"`: `image/pixels` + height, width
and channels instead of `image/encoded`).

Reading a set lists its shard files from `manifest.json` (cheap); the
records are read by `kerascnn.data.streaming`. A folder without a
complete manifest is not a shard set: `convert` writes the manifest last
and renames the whole folder into place, so a half-written set never
loads.
"""

import json
import os

from kerascnn.data.records import FORMAT, MANIFEST, RAW
from kerascnn.data.sources.base import RecordSplit
from kerascnn.data.sources.holdout import plan_split
from kerascnn.errors import DataError


def is_record_set(path):
    """Whether `path` is a folder holding a shard manifest."""
    return os.path.isfile(os.path.join(path, MANIFEST))


def read_manifest(root):
    """The parsed `manifest.json` of a shard set.

    Raises:
        DataError: unreadable, not ours, or shard files missing.
    """
    path = os.path.join(root, MANIFEST)
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise DataError(f"Cannot read the shard manifest {path}: {e}") from None
    if manifest.get("format") != FORMAT:
        raise DataError(
            f"{path} is not a kerascnn shard manifest (format "
            f"{manifest.get('format')!r}, expected {FORMAT!r})."
        )
    for split, entry in manifest["splits"].items():
        for shard in entry["shards"]:
            if not os.path.isfile(os.path.join(root, shard["file"])):
                raise DataError(
                    f"Shard set {root}: {shard['file']} of split '{split}' "
                    "is missing; convert the data again."
                )
    return manifest


def read_records(root, split, validation_size=None, name=None):
    """Lists one split of a shard set as a `RecordSplit`."""
    manifest = read_manifest(root)
    sizes = {s: e["count"] for s, e in manifest["splits"].items()}
    plan = plan_split(f"Shard set {root}", sizes, split, validation_size)
    if plan.n_val:
        raise DataError(
            f"Shard set {root} has no validation split and shards cannot "
            "hold one out; convert a source with a validation/ folder."
        )
    shards = manifest["splits"][split]["shards"]
    size = manifest.get("image_size")
    return RecordSplit(
        name=name or root,
        source=f"{root} (TFRecord shards)",
        split=split,
        split_sizes=plan.sizes,
        class_names=list(manifest["class_names"]),
        files=[os.path.join(root, s["file"]) for s in shards],
        image_shape=(
            (size[0], size[1], manifest["channels"]) if size else None
        ),
        encoding=RAW if manifest.get("encoding") == RAW else None,
        channels=manifest.get("channels"),
    )
