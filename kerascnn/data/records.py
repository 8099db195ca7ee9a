"""The TFRecord schema of image shard sets: one home for what `convert`
writes and what the pipeline reads.

A shard set is a folder holding `MANIFEST` (JSON, `"format": FORMAT`)
and `<split>/<split>-NNNNN-of-MMMMM.tfrecord` files of
`tf.train.Example`s with the feature names of TFDS and TF Model Garden:
`image/encoded` (the encoded image), `image/class/label` and
`image/filename`. Raw-pixel sets (manifest `"encoding": "raw"`) hold the
decoded uint8 pixels in `image/pixels` with `image/height`,
`image/width` and `image/channels` instead of `image/encoded`.
"""

from kerascnn.lazy import LazyModule

np = LazyModule("numpy")
tf = LazyModule("tensorflow")

MANIFEST = "manifest.json"
FORMAT = "kerascnn-tfrecord-images"
FEATURE_IMAGE = "image/encoded"
FEATURE_LABEL = "image/class/label"
FEATURE_NAME = "image/filename"
FEATURE_PIXELS = "image/pixels"
FEATURE_HEIGHT = "image/height"
FEATURE_WIDTH = "image/width"
FEATURE_CHANNELS = "image/channels"
# The manifest's (and `RecordSplit.encoding`'s) name of raw-pixel sets.
RAW = "raw"


def serialize_example(data, label, name):
    """A serialized `tf.train.Example`; `data` is encoded bytes or (raw)
    a uint8 `(H, W, C)` array, `name` the file name as bytes."""

    feature = tf.train.Feature

    def ints(*values):
        return feature(int64_list=tf.train.Int64List(value=list(values)))

    def one_bytes(value):
        return feature(bytes_list=tf.train.BytesList(value=[value]))

    if isinstance(data, np.ndarray):
        height, width, channels = data.shape
        image = {
            FEATURE_PIXELS: one_bytes(data.tobytes()),
            FEATURE_HEIGHT: ints(height),
            FEATURE_WIDTH: ints(width),
            FEATURE_CHANNELS: ints(channels),
        }
    else:
        image = {FEATURE_IMAGE: one_bytes(data)}
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                **image,
                FEATURE_LABEL: ints(int(label)),
                FEATURE_NAME: one_bytes(name),
            }
        )
    ).SerializeToString(deterministic=True)  # map order: sorted keys


def parse_example(serialized, encoding=None, channels=None):
    """A serialized `tf.train.Example` -> `(bytes, label, name)`, or
    `(uint8 (H, W, C) image, label, name)` for `encoding="raw"` (C =
    `channels`, checked)."""

    scalar = tf.io.FixedLenFeature
    if encoding == RAW:
        image_features = {
            FEATURE_PIXELS: scalar([], tf.string),
            FEATURE_HEIGHT: scalar([], tf.int64),
            FEATURE_WIDTH: scalar([], tf.int64),
            FEATURE_CHANNELS: scalar([], tf.int64),
        }
    else:
        image_features = {FEATURE_IMAGE: scalar([], tf.string)}
    features = tf.io.parse_single_example(
        serialized,
        {
            **image_features,
            FEATURE_LABEL: scalar([], tf.int64),
            FEATURE_NAME: scalar([], tf.string, ""),
        },
    )
    if encoding == RAW:
        shape = tf.stack([features[FEATURE_HEIGHT], features[FEATURE_WIDTH],
                          features[FEATURE_CHANNELS]])  # fmt: skip
        image = tf.reshape(
            tf.io.decode_raw(features[FEATURE_PIXELS], tf.uint8), shape
        )
        image = tf.ensure_shape(image, [None, None, channels])
    else:
        image = features[FEATURE_IMAGE]
    return (
        image,
        tf.cast(features[FEATURE_LABEL], tf.int32),
        features[FEATURE_NAME],
    )
