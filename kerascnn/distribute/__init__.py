"""Training on several devices and machines with `tf.distribute`.

    strategy = get_strategy("auto")        # all local GPUs, else one device
    with strategy.scope():
        model = build(...)

One module a concern: `strategies` (a strategy by name, chief or not),
`cluster` (multi-worker formation in bounded time, lost peers),
`worker_dirs` (where each worker writes), `keras_workarounds` (Keras 3
bugs under `MultiWorkerMirroredStrategy`, with their upstream issue).
"""

from kerascnn.distribute.cluster import (
    DEFAULT_PEER_TIMEOUT,
    HEARTBEAT_SECONDS,
    PEER_TIMEOUT_ENV,
    PeerUnavailableError,
    exit_unless_set,
    peer_errors,
    peer_lost,
    peer_timeout,
)
from kerascnn.distribute.keras_workarounds import prepare_model
from kerascnn.distribute.strategies import (
    STRATEGIES,
    get_strategy,
    is_chief,
    is_multi_worker,
)
from kerascnn.distribute.worker_dirs import shared_run_dir, worker_folder
from kerascnn.tf_config import num_workers, read_tf_config

__all__ = [
    "DEFAULT_PEER_TIMEOUT",
    "HEARTBEAT_SECONDS",
    "PEER_TIMEOUT_ENV",
    "STRATEGIES",
    "PeerUnavailableError",
    "exit_unless_set",
    "get_strategy",
    "is_chief",
    "is_multi_worker",
    "num_workers",
    "peer_errors",
    "peer_lost",
    "peer_timeout",
    "prepare_model",
    "read_tf_config",
    "shared_run_dir",
    "worker_folder",
]
