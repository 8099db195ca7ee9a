"""TensorFlow Datasets: the cache, else a download, read on demand.

Only the requested split is read, when the pipeline asks: into memory
when it fits the memory budget, else streamed from TFDS's own TFRecord
files (`builder.as_dataset`). The sizes of the others come from the
builder's metadata.
"""

import socket

from kerascnn.data.options import PARALLEL_CALLS
from kerascnn.data.sources.base import (
    ENV_DATA_DIR,
    SPLITS,
    ArraySplit,
    LazySplit,
    as_labels,
)
from kerascnn.data.sources.holdout import plan_split
from kerascnn.errors import DataError
from kerascnn.lazy import LazyModule

np = LazyModule("numpy")
tf = LazyModule("tensorflow")


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


class TfdsImages(LazySplit):
    """One TFDS split, read with the builder's own `as_dataset` (its
    TFRecord files, through tf.data): loaded when it fits the memory
    budget, else streamed in order."""

    def __init__(self, builder, tfds_split, size):
        self.builder, self.tfds_split = builder, tfds_split
        self.keys = builder.info.supervised_keys or ("image", "label")
        shape = tuple(builder.info.features[self.keys[0]].shape)
        self.fixed = None not in shape
        super().__init__(f"tfds:{builder.name} {tfds_split}", (1, 1, 1), size)
        if not self.fixed:  # images of several sizes: the first one's
            shape = next(iter(self._dataset(0, 1)))[0].shape
        self.image_shape = tuple(int(d) for d in shape) + (
            (1,) if len(shape) == 2 else ()
        )

    def _dataset(self, start, stop, shuffle_files=False, seed=0):
        import tensorflow_datasets as tfds

        split = self.tfds_split
        if start > 0 or stop < self.stop:  # mock_data reads whole splits
            split = f"{split}[{start}:{stop}]"
        ds = self.builder.as_dataset(
            split=split, shuffle_files=shuffle_files,
            read_config=tfds.ReadConfig(shuffle_seed=seed),
        )  # fmt: skip
        image_key, label_key = self.keys
        return ds.map(lambda ex: (ex[image_key], ex[label_key]))

    def _elements(self, start, stop, shuffle_files=False, seed=0):

        shape = list(self.image_shape)

        def fit(image, label):
            if image.shape.rank == 2:
                image = image[..., None]
            if not self.fixed:
                image = tf.cast(
                    tf.round(tf.image.resize(image, shape[:2])), tf.uint8
                )
            return tf.ensure_shape(image, shape), tf.cast(label, tf.int32)

        return self._dataset(start, stop, shuffle_files, seed).map(
            fit, num_parallel_calls=PARALLEL_CALLS
        )

    def _load(self, start, stop, count):
        import tensorflow_datasets as tfds

        images = np.empty((stop - start,) + self.image_shape, np.uint8)
        labels = np.empty(stop - start, np.int32)
        n = 0
        for x, y in tfds.as_numpy(self._elements(start, stop).batch(1024)):
            images[n : n + len(x)], labels[n : n + len(x)] = x, y
            n += len(x)
            count.add(len(x))
        if n == 0:
            where = f"tfds:{self.builder.name}:{self.tfds_split}"
            raise DataError(f"TFDS split {where} is empty.")
        return images[:n], as_labels(labels[:n], self.description)


def _class_names(builder):
    label = builder.info.features[builder.info.supervised_keys[1]]
    names = getattr(label, "names", None)
    return list(names or [str(i) for i in range(label.num_classes)])


def _split_sizes(builder):
    """`{split: count}` from the metadata, else (no metadata, e.g.
    `tfds.testing.mock_data`) by counting train and test."""
    splits = builder.info.splits
    if not splits:
        return {
            s: int(builder.as_dataset(split=s).reduce(0, lambda n, _: n + 1))
            for s in ("train", "test")
        }
    return {s: splits[s].num_examples for s in SPLITS if s in splits}


def read_tfds(tfds_name, split, validation_size=None, looked_for=(),
              display_name=None):  # fmt: skip
    """One split of a TFDS image classification data set: an
    `ArraySplit` whose images are a `TfdsImages` (read on demand)."""
    builder = tfds_builder(tfds_name, looked_for)
    where = f"tfds:{tfds_name}"
    sizes = _split_sizes(builder)
    plan = plan_split(where, sizes, split, validation_size)
    images = TfdsImages(builder, plan.read, sizes[plan.read])
    return ArraySplit(
        name=display_name or where,
        source=where,
        split=split,
        split_sizes=plan.sizes,
        class_names=_class_names(builder),
        lazy=plan.take(images),
    )
