"""The stages both image paths share: in memory (`pipeline.image_dataset`)
and streamed (`streaming.image_stream`, `streaming.array_stream`).

    order:   index_dataset (shard, shuffle, repeat)   [in memory, files]
             shard_for_pipeline                       [text, TFDS, ...]
    batch:   per_replica_batch_size
    finish:  with_batch_seeds -> finish_batch (augment + normalize)
    options: `kerascnn.data.options.with_options`

Every path batches per replica, draws one stateless augmentation seed per
batch from a seeded `Dataset.random` and then augments and normalizes the
whole batch with the same two functions, so an unshuffled stream gives
the batches of the in-memory path.
"""

from kerascnn.data import augment as aug
from kerascnn.data.options import PARALLEL_CALLS
from kerascnn.lazy import LazyModule

tf = LazyModule("tensorflow")


def per_replica_batch_size(batch_size, input_context):
    """The batch one replica reads: `batch_size` is the GLOBAL batch."""
    if batch_size is None or input_context is None:
        return batch_size
    return input_context.get_per_replica_batch_size(batch_size)


def shard_for_pipeline(ds, input_context):
    """Keeps this input pipeline's share of `ds` (every n-th element)."""
    if input_context is not None and input_context.num_input_pipelines > 1:
        return ds.shard(
            input_context.num_input_pipelines, input_context.input_pipeline_id
        )
    return ds


def index_dataset(n, shuffle, seed, repeat, input_context):
    """`0 .. n-1`: this pipeline's share, shuffled (reshuffled each
    epoch) and repeated as asked."""

    ds = shard_for_pipeline(tf.data.Dataset.range(n), input_context)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds


def with_batch_seeds(ds, seed):
    """Pairs each element of `ds` with a stateless seed (int64 `(2,)`),
    drawn fresh each epoch from `seed`."""

    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip(ds, seeds.batch(2))


def finish_batch(images, preprocessing, recipe, seed):
    """uint8 images -> what the model eats: `recipe`'s augmentation (none
    when `recipe` is `None`) with `seed`, then `aug.preprocess_images`."""
    if recipe is not None:
        images = aug.augment_images(images, recipe, seed)
    return aug.preprocess_images(images, preprocessing)


def batch_and_finish(ds, preprocessing, recipe, batch_size, seed,
                     input_context):  # fmt: skip
    """uint8 `(image, label)` elements -> batches per replica, augmented
    (a seed per batch, as in memory) and normalized."""
    per_replica = per_replica_batch_size(batch_size, input_context)
    if per_replica is not None:
        ds = ds.batch(per_replica)
    ds = with_batch_seeds(ds, seed)
    return ds.map(
        lambda xy, s: (finish_batch(xy[0], preprocessing, recipe, s), xy[1]),
        num_parallel_calls=PARALLEL_CALLS, deterministic=True,
    )  # fmt: skip
