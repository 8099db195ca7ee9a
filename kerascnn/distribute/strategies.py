"""Distribution strategies by name, as in TF Model Garden's distribute_utils.

Names: `auto`, `default` (no distribution), `one_device`, `mirrored` (all
local GPUs; an error without one), `multi_worker` (several processes or
machines described by the `TF_CONFIG` environment variable).
"""

import tensorflow as tf

from kerascnn.distribute import cluster
from kerascnn.errors import InvalidArgumentError
from kerascnn.tf_config import num_workers, read_tf_config

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")


def get_strategy(name="auto", devices=None):
    """Returns a `tf.distribute.Strategy` for a strategy name.

    Args:
        name: one of `STRATEGIES`. `"auto"` picks `multi_worker` when
            `TF_CONFIG` names several workers, `mirrored` with two or more
            GPUs, and the default strategy otherwise. Defaults to `"auto"`.
        devices: optional device list for `mirrored` / `one_device`
            (e.g. `["/cpu:0", "/cpu:1"]` for logical CPUs in tests).

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        InvalidArgumentError: unknown name, `mirrored` without GPUs or
            devices, malformed `TF_CONFIG`.
        PeerUnavailableError: a multi-worker peer did not join in time.
    """
    if name not in STRATEGIES:
        raise InvalidArgumentError(
            f"Unknown strategy {name!r}; choose one of "
            f"{', '.join(STRATEGIES)}. Received: strategy={name!r}"
        )
    if name in ("auto", "multi_worker"):
        # Checked before TensorFlow starts anything (and reads TF_CONFIG).
        tf_config = read_tf_config()

    if name == "auto":
        name = _auto_name(tf, tf_config)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        device = (devices or [_first_device(tf)])[0]
        return tf.distribute.OneDeviceStrategy(device)
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(
            devices=_mirrored_devices(tf, devices)
        )
    return _multi_worker(tf, read_tf_config())


def _auto_name(tf, tf_config):
    if tf_config and num_workers(tf_config) > 1:
        return "multi_worker"
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return "mirrored"
    return "default"


def _first_device(tf):
    gpus = tf.config.list_logical_devices("GPU")
    return gpus[0].name if gpus else "/cpu:0"


def _mirrored_devices(tf, devices):
    if devices:
        return devices
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if not gpus:
        raise InvalidArgumentError(
            "strategy 'mirrored' mirrors the model over local GPUs and "
            "TensorFlow sees none; use --strategy default (one device) or "
            "multi_worker (several processes)."
        )
    return gpus


def _multi_worker(tf, tf_config):
    if tf_config is None:
        raise InvalidArgumentError(
            "strategy 'multi_worker' needs TF_CONFIG describing the cluster, "
            'e.g. {"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
            '"task": {"type": "worker", "index": 0}}.'
        )
    timeout = cluster.peer_timeout()
    cluster.configure_coordination(tf, tf_config, timeout)
    message = (
        f"The multi-worker cluster did not form within {timeout:g} s "
        f"({cluster.PEER_TIMEOUT_ENV}): check that every worker in "
        "TF_CONFIG was started and that its address is reachable."
    )
    # TensorFlow waits for absent peers inside C++ and ignores its own
    # register timeout and SIGTERM there, so a watchdog ends the process.
    formed = cluster.exit_unless_set(timeout, message)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(
                timeout_seconds=timeout
            )
        )
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as e:
        raise cluster.PeerUnavailableError(
            f"{message} ({cluster.first_line(e)})"
        ) from None
    finally:
        formed.set()
    return strategy


def is_multi_worker(strategy):
    """True for a strategy whose replicas span several processes."""
    return getattr(strategy.extended, "_num_workers", 1) > 1


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
