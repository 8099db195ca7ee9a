"""`TF_CONFIG`, the cluster description of multi-worker training, checked.

TensorFlow reads the same variable; checking it here first turns a typo
into one line naming what is wrong instead of a hang or a traceback deep
in the runtime.
"""

import json
import os

from kerascnn.errors import InvalidArgumentError

TASK_TYPES = ("chief", "worker")


def read_tf_config():
    """The parsed and checked `TF_CONFIG`, or `None` when it is unset.

    Raises:
        InvalidArgumentError: one line naming what is wrong.
    """
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        tf_config = json.loads(raw)
    except ValueError as e:
        raise _bad_tf_config(f"it is not valid JSON ({e})", raw) from None
    if not isinstance(tf_config, dict) or not isinstance(
        tf_config.get("cluster"), dict
    ):
        raise _bad_tf_config('it needs a "cluster" object', raw)
    cluster = tf_config["cluster"]
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(
            isinstance(a, str) and _is_host_port(a) for a in addresses
        ):
            raise _bad_tf_config(
                f'cluster "{job}" must be a list of "host:port" strings', raw
            )
    _check_task(tf_config.get("task"), cluster, raw)
    return tf_config


def _is_host_port(address):
    host, _, port = address.rpartition(":")
    return bool(host) and port.isdigit()


def _check_task(task, cluster, raw):
    if not isinstance(task, dict):
        raise _bad_tf_config(
            'it needs a "task" object like {"type": "worker", "index": 0}',
            raw,
        )
    task_type, index = task.get("type"), task.get("index", 0)
    if task_type not in TASK_TYPES:
        raise _bad_tf_config(
            f'task type must be "chief" or "worker", not {task_type!r}', raw
        )
    size = len(cluster.get(task_type, []))
    if isinstance(index, bool) or not isinstance(index, int):
        raise _bad_tf_config(f"task index must be an integer: {index!r}", raw)
    if not 0 <= index < size:
        raise _bad_tf_config(
            f"task index {index} is outside cluster "
            f'"{task_type}" ({size} address(es))',
            raw,
        )


def _bad_tf_config(reason, raw):
    return InvalidArgumentError(
        f"TF_CONFIG is malformed: {reason}. Received: TF_CONFIG={raw!r}"
    )


def num_workers(tf_config):
    """Number of training processes (chief + workers) in a `TF_CONFIG`."""
    cluster = tf_config["cluster"]
    return sum(len(cluster.get(job, [])) for job in TASK_TYPES)
