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
"""

import csv
import datetime
import glob
import json
import os

from kerascnn.config import TrainConfig
from kerascnn.errors import KerasCNNError, TrainingError

BACKUP_DIR = "backup"
CONFIG_FILENAME = "config.json"
METRICS_FILENAME = "metrics.json"
HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
# Settings that may change between a run and its resumption.
_RESUME_IGNORED = (
    "run_dir",
    "log_format",
    "export",
    "export_dir",
    "export_name",
)
# What Keras' CSVLogger writes for a metric an epoch did not log.
_MISSING = ("", "NA", None)


def _comparable(config):
    d = config.to_dict()
    for key in _RESUME_IGNORED:
        d.pop(key, None)
    return d


def _unfinished_run_config(run_dir):
    """The saved config of an unfinished run (backup present), else None."""
    backup = os.path.join(run_dir, BACKUP_DIR)
    cfg_path = os.path.join(run_dir, CONFIG_FILENAME)
    if not (os.path.isdir(backup) and os.path.isfile(cfg_path)):
        return None
    with open(cfg_path) as f:
        return TrainConfig.from_dict(json.load(f))


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
    """Refuses to continue an unfinished run that has other settings."""
    saved = _unfinished_run_config(run_dir)
    if saved is not None and _comparable(saved) != _comparable(config):
        raise TrainingError(
            f"{run_dir} holds an unfinished run with a different "
            "configuration; pass another --run-dir or the same settings."
        )


def read_history_csv(run_dir):
    """`{metric: [per-epoch values], "epoch": [1, 2, ...]}` from history.csv.

    The one reader of the file: a resume appends rows and may rewrite an
    epoch (the last row of an epoch wins); values an epoch did not log
    (`NA`) are left out. Returns `None` when the run has no history.csv.
    """
    path = os.path.join(run_dir, HISTORY_CSV)
    if not os.path.isfile(path):
        return None
    by_epoch = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            by_epoch[int(row["epoch"])] = row
    history = {}
    for epoch in sorted(by_epoch):
        for key, value in by_epoch[epoch].items():
            if key != "epoch" and value not in _MISSING:
                history.setdefault(key, []).append(float(value))
    history["epoch"] = [e + 1 for e in sorted(by_epoch)]
    return history


def completed_epochs(run_dir):
    """Epochs history.csv records as finished (0 for a new run)."""
    history = read_history_csv(run_dir)
    return len(history["epoch"]) if history else 0
