"""The fixed `tf.data` settings every pipeline of `kerascnn.data` uses.

Autotuning is off: map stages run `PARALLEL_CALLS` workers and the
finished pipeline prefetches `PREFETCH_BATCHES` batches. The work per
batch is a gather (or one decode per file) and a few vectorized ops, so
there is little to tune, and on a 2-core machine autotuning's own
machinery made whole training epochs run at half speed at random (the
measurement is in benchmarks/README.md).

This module imports nothing from the package, so sources (TFDS's
reader) and stages alike can use it.
"""

import os

from kerascnn.lazy import LazyModule

tf = LazyModule("tensorflow")

PARALLEL_CALLS = max(1, min(len(os.sched_getaffinity(0)), 8))
PREFETCH_BATCHES = 2


def with_options(ds, input_context, shard_policy=None):
    """`ds` with the package's `tf.data.Options`: deterministic order,
    autotuning off, and the auto-shard policy.

    Args:
        ds: a `tf.data.Dataset`.
        input_context: a `tf.distribute.InputContext` or `None`.
        shard_policy: an `AutoShardPolicy`; default: `OFF` with an
            `input_context` (the pipeline shards itself), else `DATA`
            (for `strategy.experimental_distribute_dataset`).
    """

    options = tf.data.Options()
    policy = tf.data.experimental.AutoShardPolicy
    if shard_policy is None:
        shard_policy = policy.OFF if input_context is not None else policy.DATA
    options.experimental_distribute.auto_shard_policy = shard_policy
    options.deterministic = True
    options.autotune.enabled = False
    return ds.with_options(options)
