"""Input pipelines: images (MNIST family, CIFAR-10, folders, TFDS, .npz)
and ATIS slot filling.

    >>> from kerascnn.data import load
    >>> ds, info = load("mnist", "train", batch_size=128)
    >>> info.input_shape, info.num_classes
    ((28, 28, 1), 10)

`DatasetInfo.kind` says what a data set holds: `IMAGES` or `TAGGED_TEXT`.

Stages, one job each: `sources` (find and read raw records, each split
typed), `decode` (records -> uint8 pixels), `preprocessing` (the
normalization spec and the ImageNet style), `augment` (train / eval /
serving transforms), `stages` (the batch stages every image path shares),
`storage` (the memory budget: in memory or streamed), `records` (the
TFRecord schema), `text` (ATIS parsing and vocabularies), `pipeline`
(`load`), `streaming` (image folders and TFRecord shards read inside
tf.data, for data that does not fit the memory budget), `convert` (a
data set -> TFRecord shards), `preview` (a PNG grid of examples). See
docs/data.md.
"""

from kerascnn.data.augment import preprocess_images, serving_preprocess
from kerascnn.data.info import IMAGES, KINDS, TAGGED_TEXT, DatasetInfo
from kerascnn.data.pipeline import LoadOptions, get_info, load
from kerascnn.data.sources import list_datasets, read_idx, resolve_source
from kerascnn.data.text import AtisVocabularies, Vocabulary

__all__ = [
    "AtisVocabularies",
    "DatasetInfo",
    "IMAGES",
    "KINDS",
    "LoadOptions",
    "TAGGED_TEXT",
    "Vocabulary",
    "get_info",
    "list_datasets",
    "load",
    "preprocess_images",
    "read_idx",
    "resolve_source",
    "serving_preprocess",
]
