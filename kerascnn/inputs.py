"""The datasets a training run reads, from its `TrainConfig`.

`load_data(config, strategy)` returns the training set, the per-epoch
validation set and the training split's `DatasetInfo`; `fit` calls it
before anything is written, so a bad data set fails early.
"""

import dataclasses

import numpy as np

from kerascnn import tasks
from kerascnn.data.shapes import image_args


def load_data(config, strategy=None):
    """Train and validation datasets plus the train `DatasetInfo`.

    Validation uses the data set's validation split when it has one (ATIS
    dev), else its test split. With several replicas each dataset is built
    per input pipeline, so the global batch is split across replicas.
    """
    train_ds, info = load_split(config, "train", training=True)
    val_split = "validation" if info.split_sizes.get("validation") else "test"
    if strategy is not None and strategy.num_replicas_in_sync > 1:
        return (
            distribute_split(strategy, config, "train", training=True),
            distribute_split(strategy, config, val_split, training=False),
            info,
        )
    return train_ds, _validation_set(config, val_split, info), info


# Per-epoch validation of image models runs in batches of up to this many
# input values (MNIST: 2,048 images, CIFAR-10: 1,365; ImageNet-sized
# inputs keep the training batch), and is cached in memory after
# normalization when it fits `VALIDATION_CACHE_BYTES`: forward passes are
# cheaper in big batches, so the epoch end costs less of a small model's
# epoch (measured: benchmarks/README.md).
VALIDATION_BATCH_VALUES = 2**22
VALIDATION_BATCH_MAX = 2048
VALIDATION_CACHE_BYTES = 256 * 2**20


def _validation_set(config, split, info):
    """The per-epoch validation dataset: big batches, cached if small."""
    if not tasks.get_task(info.task).big_batch_validation:
        return load_split(config, split, training=False)[0]
    values = int(np.prod(config.input_shape or info.input_shape))
    batch = min(VALIDATION_BATCH_MAX, VALIDATION_BATCH_VALUES // values)
    batch = max(config.batch_size, batch)
    val_config = dataclasses.replace(config, batch_size=batch)
    val_ds, val_info = load_split(val_config, split, training=False)
    if val_info.num_examples * values * 4 <= VALIDATION_CACHE_BYTES:
        val_ds = val_ds.cache()
    return val_ds


def load_split(config, split, training, input_context=None):
    """`kerascnn.data.load` of one split with the run's settings."""
    from kerascnn import data

    image_size, channels = image_args(config.input_shape)
    return data.load(
        config.dataset,
        split,
        data_dir=config.data_dir,
        batch_size=config.batch_size,
        shuffle=training,
        augment=config.augment and training,
        limit=config.limit if training else config.eval_limit,
        seed=config.seed,
        image_size=image_size,
        channels=channels,
        input_context=input_context,
        validation_size=config.validation_split,
    )


def distribute_split(strategy, config, split, training):
    """One split built per input pipeline of `strategy` (per replica)."""

    def dataset_fn(input_context):
        return load_split(config, split, training, input_context)[0]

    return strategy.distribute_datasets_from_function(dataset_fn)
