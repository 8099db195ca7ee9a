"""Where each worker of a run writes, as one context manager.

The chief (task `chief`, else `worker` 0) writes the run directory; the
other workers write their checkpoints and backups to temporary folders
that they delete, starting from a copy of the chief's backup.

    with worker_folder(run_dir, strategy, "backup") as write_dir:
        model.fit(..., callbacks=make_callbacks(config, write_dir, ...))
"""

import contextlib
import json
import os
import shutil
import tempfile

from kerascnn.distribute.strategies import is_chief
from kerascnn.tf_config import read_tf_config


@contextlib.contextmanager
def worker_folder(run_dir, strategy, backup_name):
    """Yields this worker's write folder: `run_dir` on the chief, else a
    temporary folder seeded with the chief's backup and removed on exit
    (also on errors)."""
    write_dir = worker_dir(run_dir, strategy)
    try:
        copy_backup(run_dir, write_dir, backup_name)
        yield write_dir
    finally:
        remove_worker_dir(write_dir, run_dir)


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
