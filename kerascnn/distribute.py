"""Distribution strategies by name, as in TF Model Garden's distribute_utils.

    strategy = get_strategy("auto")        # all local GPUs, else one device
    with strategy.scope():
        model = build(...)

Names: `auto`, `default` (no distribution), `one_device`, `mirrored` (all
local GPUs, or the CPU when there are none), `multi_worker` (several
machines described by the `TF_CONFIG` environment variable).
"""

import os

from kerascnn.errors import InvalidArgumentError

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")


def get_strategy(name="auto", devices=None):
    """Returns a `tf.distribute.Strategy` for a strategy name.

    Args:
        name: one of `STRATEGIES`. `"auto"` picks `mirrored` with two or more
            GPUs, `multi_worker` when `TF_CONFIG` names several workers, and
            the default strategy otherwise. Defaults to `"auto"`.
        devices: optional device list for `mirrored` / `one_device`
            (e.g. `["/cpu:0", "/cpu:1"]` for logical CPUs in tests).

    Returns:
        A `tf.distribute.Strategy`.
    """
    import tensorflow as tf

    if name not in STRATEGIES:
        raise InvalidArgumentError(
            f"Unknown strategy {name!r}; choose one of "
            f"{', '.join(STRATEGIES)}. Received: strategy={name!r}"
        )
    if name == "auto":
        name = _auto_name(tf)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        device = (devices or [_first_device(tf)])[0]
        return tf.distribute.OneDeviceStrategy(device)
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    return _multi_worker(tf)


def _auto_name(tf):
    if _workers_in_tf_config() > 1:
        return "multi_worker"
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return "mirrored"
    return "default"


def _first_device(tf):
    gpus = tf.config.list_logical_devices("GPU")
    return gpus[0].name if gpus else "/cpu:0"


def _workers_in_tf_config():
    import json

    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except ValueError:
        raise InvalidArgumentError(
            f"TF_CONFIG is not valid JSON. Received: TF_CONFIG={raw!r}"
        ) from None
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def _multi_worker(tf):
    if _workers_in_tf_config() == 0:
        raise InvalidArgumentError(
            "strategy 'multi_worker' needs TF_CONFIG describing the cluster, "
            'e.g. {"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
            '"task": {"type": "worker", "index": 0}}.'
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(strategy):
    """True on the worker that writes checkpoints, logs and exports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )
