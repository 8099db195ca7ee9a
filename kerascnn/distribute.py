"""Distribution strategies by name, as in TF Model Garden's distribute_utils.

    strategy = get_strategy("auto")        # all local GPUs, else one device
    with strategy.scope():
        model = build(...)

Names: `auto`, `default` (no distribution), `one_device`, `mirrored` (all
local GPUs; an error without one), `multi_worker` (several processes or
machines described by the `TF_CONFIG` environment variable).

Multi-worker runs follow TensorFlow's rules for
`MultiWorkerMirroredStrategy`: every worker runs the same program, the
chief (task `chief`, else `worker` 0) writes the run directory, and the
other workers write their checkpoints to temporary folders that they
delete (`worker_dir`). Peers are waited for at most `peer_timeout()`
seconds (`KERASCNN_PEER_TIMEOUT`, default 300) when the cluster forms; a
peer that stops answering during training is detected by the coordination
service's heartbeat within about `HEARTBEAT_SECONDS`, and every surviving
worker then stops with `PeerUnavailableError` instead of hanging.
"""

import json
import os
import shutil
import sys
import tempfile

from kerascnn.errors import InvalidArgumentError, TrainingError
from kerascnn.tf_config import TASK_TYPES, num_workers, read_tf_config

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker")
PEER_TIMEOUT_ENV = "KERASCNN_PEER_TIMEOUT"
DEFAULT_PEER_TIMEOUT = 300
HEARTBEAT_SECONDS = 10


class PeerUnavailableError(TrainingError):
    """A multi-worker peer could not be reached or stopped answering."""


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
    import tensorflow as tf

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


def peer_timeout():
    """Seconds to wait for peers (`KERASCNN_PEER_TIMEOUT`, default 300)."""
    raw = os.environ.get(PEER_TIMEOUT_ENV)
    if raw is None:
        return DEFAULT_PEER_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = 0
    if not value > 0:
        raise InvalidArgumentError(
            f"{PEER_TIMEOUT_ENV} must be a positive number of seconds. "
            f"Received: {PEER_TIMEOUT_ENV}={raw!r}"
        )
    return value


# ============================ Multi-worker ============================


def _multi_worker(tf, tf_config):
    if tf_config is None:
        raise InvalidArgumentError(
            "strategy 'multi_worker' needs TF_CONFIG describing the cluster, "
            'e.g. {"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
            '"task": {"type": "worker", "index": 0}}.'
        )
    timeout = peer_timeout()
    _configure_coordination(tf, tf_config, timeout)
    message = (
        f"The multi-worker cluster did not form within {timeout:g} s "
        f"({PEER_TIMEOUT_ENV}): check that every worker in TF_CONFIG was "
        "started and that its address is reachable."
    )
    # TensorFlow waits for absent peers inside C++ and ignores its own
    # register timeout and SIGTERM there, so a watchdog ends the process.
    formed = exit_unless_set(timeout, message)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(
                timeout_seconds=timeout
            )
        )
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as e:
        raise PeerUnavailableError(f"{message} ({_first_line(e)})") from None
    finally:
        formed.set()
    return strategy


def exit_unless_set(timeout, message):
    """Ends the process unless the returned handle is `set()` in time.

    TensorFlow waits for absent peers inside C++ while holding the GIL, so
    no Python thread or signal handler can run then. Two helpers that need
    no GIL do the job: a forked child prints `message` as one line on
    stderr after `timeout` s, and `faulthandler`'s C watchdog ends the
    process with exit code 1 half a second later.
    """
    import faulthandler
    import select

    # Python's stderr: the CLI points descriptor 2 at /dev/null to mute
    # TensorFlow's C++ log lines, and keeps sys.stderr on a duplicate.
    try:
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        stderr_fd = 2
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child only waits, writes and exits
        os.close(write_fd)
        ready, _, _ = select.select([read_fd], [], [], timeout)
        if not ready:
            os.write(stderr_fd, f"Error: {message}\n".encode())
        os._exit(0)
    os.close(read_fd)
    sink = open(os.devnull, "w")  # noqa: SIM115  (closed by set())
    faulthandler.dump_traceback_later(timeout + 0.5, exit=True, file=sink)
    return _Watchdog(write_fd, pid, sink)


class _Watchdog:
    def __init__(self, write_fd, pid, sink):
        self.write_fd, self.pid, self.sink = write_fd, pid, sink

    def set(self):
        import faulthandler

        faulthandler.cancel_dump_traceback_later()
        os.write(self.write_fd, b"1")
        os.close(self.write_fd)
        os.waitpid(self.pid, 0)
        self.sink.close()


def _configure_coordination(tf, tf_config, timeout):
    """Coordination service with our register and heartbeat timeouts.

    `MultiWorkerMirroredStrategy` configures the same service with TF's
    defaults (wait an hour for peers) unless it is already configured.
    """
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    if context.context().coordination_service is not None:
        return
    cluster = tf_config["cluster"]
    leader = "chief" if cluster.get("chief") else "worker"
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=f"/job:{leader}/replica:0/task:0",
        cluster_register_timeout_in_ms=int(timeout * 1000),
        heartbeat_timeout_in_ms=HEARTBEAT_SECONDS * 1000,
        shutdown_barrier_timeout_in_ms=int(timeout * 1000),
        coordinated_jobs=[
            coordination_config_pb2.CoordinatedJob(
                name=job, num_tasks=len(cluster[job])
            )
            for job in TASK_TYPES
            if cluster.get(job)
        ],
    )
    del tf


def _first_line(error):
    """The first line of a TF error without its `{{function_node}}` tag."""
    import re

    text = getattr(error, "message", None) or str(error)
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text).strip()
    return text.splitlines()[0][:160] if text else ""


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


def worker_dir(run_dir, strategy):
    """Where this worker writes: the run directory on the chief, else a
    temporary folder (delete it with `remove_worker_dir`).

    The folder's name is fixed per run and task, so a worker that was
    killed and restarted removes what its previous life left behind.
    """
    if is_chief(strategy):
        return run_dir
    resolver = strategy.cluster_resolver
    path = os.path.join(
        tempfile.gettempdir(),
        f"kerascnn-{_digest(os.path.abspath(run_dir))}-"
        f"{resolver.task_type}{resolver.task_id}",
    )
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def _digest(text):
    import hashlib

    return hashlib.sha1(text.encode()).hexdigest()[:8]


def shared_run_dir(config):
    """A default run directory that every worker of a cluster agrees on.

    The single-process default has a timestamp, which differs between
    workers; this one is `<runs_root>/<model>-cluster-<hash of TF_CONFIG's
    cluster>`, so a restarted worker finds the same folder.
    """
    cluster = json.dumps(read_tf_config()["cluster"], sort_keys=True)
    return os.path.join(
        config.runs_root, f"{config.model}-cluster-{_digest(cluster)}"
    )


def copy_backup(run_dir, write_dir, name):
    """Gives a non-chief worker the chief's `BackupAndRestore` state.

    Every worker must resume from the same epoch and weights. The chief
    alone writes `run_dir/<name>`; a non-chief worker starts from a copy
    of it in its temporary folder (multi-worker resume therefore needs the
    run directory on a file system that all workers see).
    """
    source = os.path.join(run_dir, name)
    if write_dir == run_dir or not os.path.isdir(source):
        return
    shutil.copytree(source, os.path.join(write_dir, name))


def remove_worker_dir(path, run_dir):
    """Deletes a non-chief worker's temporary folder (never the run dir)."""
    if path and os.path.abspath(path) != os.path.abspath(run_dir):
        shutil.rmtree(path, ignore_errors=True)


def peer_errors():
    """TensorFlow errors that mean a peer worker went away."""
    import tensorflow as tf

    return (
        tf.errors.UnavailableError,
        tf.errors.DeadlineExceededError,
        tf.errors.AbortedError,
        tf.errors.CancelledError,
        tf.errors.InternalError,
    )


def peer_lost(error, run_dir):
    """`PeerUnavailableError` for a peer that died during training."""
    return PeerUnavailableError(
        "A worker of the multi-worker cluster stopped answering "
        f"({type(error).__name__}: {_first_line(error)}). Restart every "
        "worker with the same command: training resumes from the backup in "
        f"{run_dir}."
    )


# ======================== Keras + tf.distribute ========================


def prepare_model(model, strategy):
    """Works around two Keras 3 bugs that stop multi-worker `fit`.

    Both are in `keras/src/backend/tensorflow/trainer.py` and only hit
    `MultiWorkerMirroredStrategy` (keras-team/keras#20585); single-process
    strategies work as is and are left alone.

    1. `_maybe_symbolic_build` averages the first batch over replicas
       with `strategy.reduce("MEAN", batch)` just to learn its shapes; the
       collective ops reject the tuple of `PerReplica` values: `ValueError:
       Attempt to convert a value (PerReplica:{...}) ... to a Tensor`.
       This model builds from its first local replica's batch instead.
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
            for _, _, it in iterator:
                data_batch = _local_batch(strategy, next(it))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)  # noqa: SLF001

    object.__setattr__(model, "_maybe_symbolic_build", maybe_symbolic_build)
    _fix_multi_worker_mean()
    return model


def _fix_multi_worker_mean():
    import tensorflow as tf
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


def _local_batch(strategy, batch):
    import tensorflow as tf

    def first_local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    return tf.nest.map_structure(first_local, batch)
