"""The datasets a training run reads, from its `TrainConfig`.

`load_data(config, strategy)` returns the training set, the per-epoch
validation set and the training split's `DatasetInfo`; `fit` calls it
before anything is written, so a bad data set fails early, and says on
one line how the training split is read (in memory or streamed, and why).
The training split alone goes to a tf.data service (`data_service`);
validation is read locally.
"""

import dataclasses
import os
import sys

import keras
import numpy as np

from kerascnn import data
from kerascnn.data.shapes import image_args
from kerascnn.data.sources.catalog import KNOWN
from kerascnn.data.sources.resolve import (
    IMAGENET_NAMES,
    IMAGENET_OFFLINE,
    locate,
)
from kerascnn.data.streaming import SKIPPED
from kerascnn.errors import DataError
from kerascnn.models import get_model_info
from kerascnn.models.weights import expected_normalization

DISK_CACHE_DIR = "data_cache"


def load_data(config, strategy=None, *, big_batch_validation=False):
    """Train and validation datasets plus the train `DatasetInfo`.

    Validation uses the data set's validation split when it has one (ATIS
    dev), else its test split. With several replicas each dataset is built
    per input pipeline, so the global batch is split across replicas.
    `big_batch_validation` (the model's task says it:
    `Task.big_batch_validation`, fixed-shape inputs) validates in big,
    cached batches.
    """
    if str(config.dataset).lower() in _imagenet_names():
        raise DataError(_imagenet_message(config.model))
    train_ds, info = load_split(config, "train", training=True)
    if info.storage and config.log_format != "quiet":
        print(f"Data: {info.storage}", file=sys.stderr, flush=True)
    val_split = "validation" if info.split_sizes.get("validation") else "test"
    if strategy is not None and strategy.num_replicas_in_sync > 1:
        return (
            distribute_split(strategy, config, "train", training=True),
            distribute_split(strategy, config, val_split, training=False),
            info,
        )
    return (
        train_ds,
        _validation_set(config, val_split, info, big_batch_validation),
        info,
    )


# Per-epoch validation of image models runs in batches of up to this many
# input values (MNIST: 2,048 images, CIFAR-10: 1,365; ImageNet-sized
# inputs keep the training batch), and is cached in memory after
# normalization when it fits `VALIDATION_CACHE_BYTES`: forward passes are
# cheaper in big batches, so the epoch end costs less of a small model's
# epoch (measured: benchmarks/README.md).
VALIDATION_BATCH_VALUES = 2**22
VALIDATION_BATCH_MAX = 2048
VALIDATION_CACHE_BYTES = 256 * 2**20


def _validation_set(config, split, info, big_batches):
    """The per-epoch validation dataset: big batches (fixed-shape inputs
    only), cached if small."""
    shape = tuple(config.input_shape or info.input_shape)
    if not big_batches or None in shape:
        return load_split(config, split, training=False)[0]
    values = int(np.prod(shape))
    batch = min(VALIDATION_BATCH_MAX, VALIDATION_BATCH_VALUES // values)
    batch = max(config.batch_size, batch)
    val_config = dataclasses.replace(config, batch_size=batch)
    val_ds, val_info = load_split(val_config, split, training=False)
    if val_info.num_examples * values * 4 <= VALIDATION_CACHE_BYTES:
        val_ds = val_ds.cache()
    return val_ds


def _imagenet_names():

    return IMAGENET_NAMES


def _imagenet_message(model):

    return IMAGENET_OFFLINE.replace("fit resnet50", f"fit {model}")


def cache_settings(config):
    """`(cache, cache_dir)` for `data.load` from `config.cache`: `"disk"`
    caches in `<run_dir>/data_cache`, `"disk:FOLDER"` in FOLDER."""
    mode, _, folder = str(config.cache).partition(":")
    if mode != "disk":
        return mode, None
    if folder:
        return mode, os.path.expanduser(folder)
    return mode, os.path.join(config.run_dir or ".", DISK_CACHE_DIR)


def folder_input_shape(config):
    """The input shape a run reads its data at: `config.input_shape`
    (the recipe's or `--input-shape`), else, for a user's image folder
    (not a built-in data set), the model's default input: the size never
    comes from one file of a folder whose files differ."""
    if config.input_shape:
        return tuple(config.input_shape)

    if config.dataset in KNOWN:
        return None
    try:
        kind = locate(config.dataset, config.data_dir).kind
    except DataError:
        return None  # said by the load itself
    if kind != "image_folder":
        return None

    shape = get_model_info(config.model).default_input_shape
    return tuple(shape) if shape and len(shape) == 3 else None


def load_split(config, split, training, input_context=None):
    """`kerascnn.data.load` of one split with the run's settings."""

    image_size, channels = image_args(folder_input_shape(config))
    cache, cache_dir = cache_settings(config)
    return data.load(
        config.dataset,
        split,
        data_dir=config.data_dir,
        batch_size=config.batch_size,
        shuffle=training,
        augment=config.augment if training else False,
        limit=config.limit if training else config.eval_limit,
        seed=config.seed,
        image_size=image_size,
        channels=channels,
        input_context=input_context,
        validation_size=config.validation_split,
        cache=cache,
        cache_dir=cache_dir,
        skip_bad=config.skip_bad,
        data_service=config.data_service if training else None,
        normalization=expected_normalization(config.weights),
    )


def distribute_split(strategy, config, split, training):
    """One split built per input pipeline of `strategy` (per replica)."""

    def dataset_fn(input_context):
        return load_split(config, split, training, input_context)[0]

    return strategy.distribute_datasets_from_function(dataset_fn)


def skipped_files_callback():
    """A Keras callback that reports, at each epoch end, the bad files the
    streams skipped during the epoch (`skip_bad=True`)."""

    class SkippedFilesReport(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.counts = []

        def on_epoch_begin(self, epoch, logs=None):
            SKIPPED.take()

        def on_epoch_end(self, epoch, logs=None):
            names = SKIPPED.take()
            self.counts.append(len(names))
            if logs is not None and SKIPPED.counting_streams:
                logs["skipped_files"] = len(names)
            if names:
                shown = ", ".join(names[:3]) + (", ..." if len(names) > 3
                                                else "")  # fmt: skip
                print(
                    f"Epoch {epoch + 1}: skipped {len(names)} bad image "
                    f"file(s): {shown}", file=sys.stderr, flush=True,
                )  # fmt: skip

    return SkippedFilesReport()
