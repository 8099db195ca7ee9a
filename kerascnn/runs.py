"""Run directories: their layout, finding one to resume, reading history.

A run directory (`runs/<model>-<timestamp>/` by default) holds:

    config.json        the resolved TrainConfig
    metadata.json      model name, classes, preprocessing (for export)
    model.keras        the final model
    checkpoints/       best.keras (by the task's checkpoint monitor, see
                       `kerascnn.tasks.Task`), last.keras
    backup/            Keras BackupAndRestore state while the run is live
    logs/              TensorBoard event files
    history.csv        one row per epoch (appended across resumes)
    history.json       the same at the end of training
    metrics.json       final metrics on the test split
    initial_filters.npz  first conv kernels before training (visualize)
    curves.png         loss and accuracy per epoch

A run is unfinished while `backup/` exists; the same config finds it again
and resumes it (`find_resumable_run`).

One process at a time trains in a run directory: `fit` holds
`run_dir_lock` (an `fcntl` lock on `<parent>/.<name>.lock`, a hidden
file beside the run folder that names the holder's PID), which the
kernel releases when the process exits or is killed; a lock file left by
a dead process is simply taken over. A damaged `config.json` or
`history.csv` is named in one line (`RunFileError`); a run whose
checkpoints are intact still resumes.
"""

import contextlib
import datetime
import glob
import json
import os
import socket

from kerascnn.config import TrainConfig
from kerascnn.errors import (
    DataNotice,
    KerasCNNError,
    RunFileError,
    TrainingError,
)
from kerascnn.history import HISTORY_CSV, read_history_csv

BACKUP_DIR = "backup"
CONFIG_FILENAME = "config.json"
METRICS_FILENAME = "metrics.json"
# Settings that may change between a run and its resumption.
_RESUME_IGNORED = (
    "run_dir",
    "log_format",
    "export",
    "export_dir",
    "export_name",
)
# What Keras' CSVLogger writes for a metric an epoch did not log.


def _comparable(config):
    d = config.to_dict()
    for key in _RESUME_IGNORED:
        d.pop(key, None)
    return d


def _unfinished_run_config(run_dir):
    """The saved config of an unfinished run (backup present), else None.

    Raises:
        RunFileError: config.json is not a readable config.
    """
    backup = os.path.join(run_dir, BACKUP_DIR)
    cfg_path = os.path.join(run_dir, CONFIG_FILENAME)
    if not (os.path.isdir(backup) and os.path.isfile(cfg_path)):
        return None
    return read_config(cfg_path)


def read_config(path):
    """The `TrainConfig` in a run's config.json; one line if damaged."""
    try:
        with open(path) as f:
            return TrainConfig.from_dict(json.load(f))
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as e:
        detail = " ".join(str(e).split())[:120]
        raise RunFileError(f"{path} is damaged ({detail}).") from None


def find_resumable_run(config):
    """The newest unfinished run of the same config under `runs_root`."""
    pattern = os.path.join(config.runs_root, f"{config.model}-*")
    for run_dir in sorted(glob.glob(pattern), reverse=True):
        try:
            saved = _unfinished_run_config(run_dir)
        except (ValueError, KerasCNNError):
            continue
        if saved is not None and _comparable(saved) == _comparable(config):
            return run_dir
    return None


def resolve_run_dir(config, resume=True):
    """Picks the run directory: explicit, resumable, or a new timestamp."""
    if config.run_dir:
        return config.run_dir
    if resume:
        found = find_resumable_run(config)
        if found:
            return found
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join(config.runs_root, f"{config.model}-{stamp}")


def check_same_config(run_dir, config):
    """Refuses to continue an unfinished run that has other settings.

    A damaged config.json or history.csv does not stop a run whose
    checkpoints are intact: it resumes with this config (config.json is
    written anew; history.csv is moved aside), and a notice says so.
    """
    _set_aside_damaged_history(run_dir)
    try:
        saved = _unfinished_run_config(run_dir)
    except RunFileError as e:
        _notice(
            f"{e} Resuming from the checkpoints in "
            f"{os.path.join(run_dir, BACKUP_DIR)} with this command's "
            "settings; config.json is written anew."
        )
        return
    if saved is not None and _comparable(saved) != _comparable(config):
        raise TrainingError(
            f"{run_dir} holds an unfinished run with a different "
            "configuration; pass another --run-dir or the same settings."
        )


def _notice(text):
    import warnings

    warnings.warn(DataNotice(text), stacklevel=3)


def _set_aside_damaged_history(run_dir):
    """Moves a damaged history.csv of an unfinished run aside (named)."""
    if not os.path.isdir(os.path.join(run_dir, BACKUP_DIR)):
        return
    try:
        read_history_csv(run_dir)
    except RunFileError as e:
        path = os.path.join(run_dir, HISTORY_CSV)
        aside = path + ".damaged"
        os.replace(path, aside)
        _notice(
            f"{str(e).split(';')[0]}; moved to {aside}, and the run resumes "
            "from its checkpoints with a new history.csv."
        )


def completed_epochs(run_dir):
    """Epochs history.csv records as finished (0 for a new run)."""
    history = read_history_csv(run_dir)
    return len(history["epoch"]) if history else 0


# ============================ The run lock ============================


def _same_file(fd, path):
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def lock_path(run_dir):
    """`<parent>/.<name>.lock`: beside the run folder, so that it exists
    before the folder does and never lands in what a run holds."""
    run_dir = os.path.abspath(run_dir)
    parent, name = os.path.split(run_dir.rstrip(os.sep))
    return os.path.join(parent, f".{name}.lock")


@contextlib.contextmanager
def run_dir_lock(run_dir, enabled=True):
    """Holds the run directory for this process (module docstring).

    Raises:
        TrainingError: another live process holds it (its PID named).
    """
    if not enabled:
        yield
        return
    import fcntl

    path = lock_path(run_dir)
    parent = os.path.dirname(path)
    made_parent = not os.path.isdir(parent)
    os.makedirs(parent, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise TrainingError(
                f"{run_dir} is in use by another kerascnn process "
                f"({holder or 'PID unknown'}; lock file {path}); wait for "
                "it to finish, stop it, or pass another --run-dir."
            ) from None
        if _same_file(fd, path):
            break
        os.close(fd)  # its holder removed it meanwhile: lock the new one
    try:
        os.ftruncate(fd, 0)
        holder = f"PID {os.getpid()} on {socket.gethostname()}"
        os.pwrite(fd, holder.encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
            if made_parent:  # e.g. runs/, when nothing else came of it
                with contextlib.suppress(OSError):
                    os.rmdir(parent)
    finally:
        os.close(fd)  # releases the lock (the kernel does it on a kill)
