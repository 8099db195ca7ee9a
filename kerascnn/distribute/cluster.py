"""A multi-worker cluster that forms in bounded time and reports lost peers.

Peers are waited for at most `peer_timeout()` seconds
(`KERASCNN_PEER_TIMEOUT`, default 300) when the cluster forms; a peer that
stops answering during training is detected by the coordination service's
heartbeat within about `HEARTBEAT_SECONDS`, and every surviving worker
then stops with `PeerUnavailableError` instead of hanging.
"""

import os
import sys

import tensorflow as tf

from kerascnn.errors import InvalidArgumentError, TrainingError
from kerascnn.tf_config import TASK_TYPES

PEER_TIMEOUT_ENV = "KERASCNN_PEER_TIMEOUT"
DEFAULT_PEER_TIMEOUT = 300
HEARTBEAT_SECONDS = 10


class PeerUnavailableError(TrainingError):
    """A multi-worker peer could not be reached or stopped answering."""


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


def configure_coordination(tf, tf_config, timeout):
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


def first_line(error):
    """The first line of a TF error without its `{{function_node}}` tag."""
    import re

    text = getattr(error, "message", None) or str(error)
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text).strip()
    return text.splitlines()[0][:160] if text else ""


def peer_errors():
    """TensorFlow errors that mean a peer worker went away."""

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
        f"({type(error).__name__}: {first_line(error)}). Restart every "
        "worker with the same command: training resumes from the backup in "
        f"{run_dir}."
    )
