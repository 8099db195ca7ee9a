"""Work-arounds for Keras 3 bugs under `MultiWorkerMirroredStrategy`.

keras-team/keras#20585: Keras' TensorFlow trainer
(`keras/src/backend/tensorflow/trainer.py`) averages the first batch over
replicas to learn its shapes, and averages scalar metrics with `axis=0`;
both fail across workers with `ValueError: Attempt to convert a value
(PerReplica:{...}) ... to a Tensor`. Single-process strategies are left
alone. Remove this module when the upstream fix is in the pinned Keras.
"""

import keras
import tensorflow as tf

from kerascnn.distribute.strategies import is_multi_worker


def prepare_model(model, strategy):
    """Works around two Keras 3 bugs that stop multi-worker `fit`.

    Both are in `keras/src/backend/tensorflow/trainer.py` and only hit
    `MultiWorkerMirroredStrategy` (keras-team/keras#20585); single-process
    strategies work as is and are left alone.

    1. `_maybe_symbolic_build` averages the first batch over replicas
       with `strategy.reduce("MEAN", batch)` just to learn its shapes; the
       collective ops reject the tuple of `PerReplica` values: `ValueError:
       Attempt to convert a value (PerReplica:{...}) ... to a Tensor`.
       This model builds from the shapes of the dataset's `element_spec`
       instead, without reading a batch: Keras' own way opens an iterator
       for one batch and then a fresh one for the epoch, so every worker
       read the start of its shard twice (the whole of a small one, with
       the prefetch buffers).
    2. `reduce_per_replica` averages the scalar loss and metrics with
       `strategy.reduce("MEAN", v, axis=0)`, which fails on a scalar
       ("Invalid reduction dimension 0 for input with 0 dimensions").
       Multi-worker means are taken with `axis=None` (element-wise over
       replicas), which is what the single-process path computes.
    """
    if not is_multi_worker(strategy):
        return model

    def maybe_symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            data_batch = _batch_spec(iterator)
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)  # noqa: SLF001

    object.__setattr__(model, "_maybe_symbolic_build", maybe_symbolic_build)
    _fix_multi_worker_mean()
    return model


def _fix_multi_worker_mean():
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica
    if getattr(original, "kerascnn_fix", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and is_multi_worker(strategy):
            return tf.nest.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None), values
            )
        return original(values, strategy, reduction)

    reduce_per_replica.kerascnn_fix = True
    tf_trainer.reduce_per_replica = reduce_per_replica


def _batch_spec(epoch_iterator):
    """Symbolic tensors shaped like one replica's batch, from the
    distributed dataset's `element_spec` (no data is read)."""

    # Keras' `TFEpochIterator` keeps the distributed dataset it iterates.
    spec = epoch_iterator._distributed_dataset.element_spec  # noqa: SLF001

    def symbolic(value_spec):
        value_spec = getattr(value_spec, "_value_specs", [value_spec])[0]
        return keras.KerasTensor(
            tuple(value_spec.shape.as_list()), value_spec.dtype.name
        )

    # Specs are leaves: tf.nest does not expand a `PerReplicaSpec`.
    return tf.nest.map_structure(symbolic, spec)
