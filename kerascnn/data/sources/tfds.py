"""TensorFlow Datasets: the cache, else a download, read once to arrays.

Only the requested split is read; the sizes of the others come from the
builder's metadata.
"""

import socket

import numpy as np

from kerascnn.data.sources.base import (
    ENV_DATA_DIR,
    SPLITS,
    RawData,
    as_labels,
    as_nhwc,
)
from kerascnn.data.sources.holdout import plan_split
from kerascnn.errors import DataError


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


def _class_names(builder):
    label = builder.info.features[builder.info.supervised_keys[1]]
    names = getattr(label, "names", None)
    return list(names or [str(i) for i in range(label.num_classes)])


def _split_sizes(builder):
    """`{split: count}` from the metadata, else (no metadata, e.g.
    `tfds.testing.mock_data`) by counting train and test."""
    splits = builder.info.splits
    if not splits:
        return {s: len(_tfds_arrays(builder, s)[1]) for s in ("train", "test")}
    return {s: splits[s].num_examples for s in SPLITS if s in splits}


def read_tfds(tfds_name, split, validation_size=None, looked_for=(),
              display_name=None):  # fmt: skip
    """Reads one split of a TFDS image classification data set to arrays."""
    builder = tfds_builder(tfds_name, looked_for)
    where = f"tfds:{tfds_name}"
    sizes = _split_sizes(builder)
    plan = plan_split(where, sizes, split, validation_size)
    x, y = _tfds_arrays(builder, plan.read)
    return RawData(
        display_name or where, "arrays", where, split, plan.sizes,
        _class_names(builder),
        images=as_nhwc(plan.take(x), where),
        labels=as_labels(plan.take(y), where),
    )  # fmt: skip
