"""Training callbacks: JSON-lines logging, a clear NaN stop, and epoch-end
saves that serialize the model once per epoch.

Per-batch work: Keras can run the per-batch hooks on a worker thread so
the next step is dispatched without waiting for this one's logs, but only
on backends it marks thread-safe (not TensorFlow: `IS_THREAD_SAFE = False`
in Keras 3.15, so its TF loop converts the logs after every execution
whatever the callbacks) and only when no callback overrides
`on_train_batch_end`/`on_batch_end` without `async_safe = True`
(`keras/src/callbacks/callback_list.py`). Keras' `BackupAndRestore`,
`ModelCheckpoint` and `TensorBoard` override it even at epoch frequency.
The callbacks here do their work at epoch ends, run no per-batch code
where none is needed, and are marked `async_safe`; on TensorFlow the lever
against per-step Python cost is `steps_per_execution`.
"""

import json
import math
import os
import shutil
import sys
import threading
import time
import zipfile

import keras

from kerascnn.files import atomic_path, copy_file, write_json


class JsonLinesLogger(keras.callbacks.Callback):
    """Prints one JSON object per epoch (metrics, seconds, learning rate)."""

    def __init__(self, stream=None):
        super().__init__()
        self.stream = stream or sys.stdout

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        record = {"epoch": epoch + 1}
        record.update({k: float(v) for k, v in (logs or {}).items()})
        record["seconds"] = round(time.perf_counter() - self._start, 3)
        lr = _current_lr(self.model)
        if lr is not None:
            record["learning_rate"] = lr
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()


class EpochProgress(keras.callbacks.Callback):
    """Training progress for people and for logs.

    On a terminal one line is redrawn in place (`epoch 3/10  120/469
    loss 0.1234 ...`, at most 10 times a second); otherwise one plain line
    per epoch, with no carriage returns or colours, so a log file reads
    like the terminal's last frame. Step counts never pass their total:
    with `steps_per_execution` Keras reports the last step of a chunk,
    which the final chunk of an epoch may overshoot.
    """

    REDRAW_SECONDS = 0.1

    def __init__(self, epochs, stream=None, interactive=None):
        super().__init__()
        self.epochs = epochs
        self.stream = stream or sys.stdout
        if interactive is None:
            isatty = getattr(self.stream, "isatty", None)
            interactive = bool(isatty and isatty())
        self.interactive = interactive
        self._steps_seen = None  # an epoch's length when Keras does not know

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._start = self._drawn = time.perf_counter()
        self._step = 0

    def on_train_batch_end(self, batch, logs=None):
        self._step = batch + 1
        now = time.perf_counter()
        if self.interactive and now - self._drawn >= self.REDRAW_SECONDS:
            self._drawn = now
            self._write("\r" + self._line(logs) + "\033[K")

    def on_epoch_end(self, epoch, logs=None):
        self._steps_seen = self._steps_seen or self._step
        seconds = time.perf_counter() - self._start
        total = self._total()
        self._step = total or self._step
        line = f"{self._line(logs)}  {seconds:.1f}s"
        if self.interactive:
            line = f"\r{line}\033[K"
        self._write(line + "\n")

    def _total(self):
        return (self.params or {}).get("steps") or self._steps_seen

    def _line(self, logs):
        total = self._total()
        step = min(self._step, total) if total else self._step
        count = f"{step}/{total}" if total else f"{step}"
        width = len(str(self.epochs))
        parts = [f"epoch {self._epoch + 1:>{width}}/{self.epochs}", count]
        parts += [f"{k} {_format_metric(v)}" for k, v in (logs or {}).items()]
        return "  ".join(parts)

    def _write(self, text):
        self.stream.write(text)
        self.stream.flush()


def _format_metric(value):
    try:
        return f"{float(value):.4f}"
    except (TypeError, ValueError):
        return str(value)


def _current_lr(model):
    try:
        opt = model.optimizer
        lr = opt.learning_rate
        if callable(lr):
            lr = lr(opt.iterations)
        return float(keras.ops.convert_to_numpy(lr))
    except (AttributeError, TypeError, ValueError):
        return None


class StopOnNaN(keras.callbacks.Callback):
    """Stops at the first non-finite loss and remembers where it happened.

    Like `keras.callbacks.TerminateOnNaN`, but records epoch and batch so
    the trainer can raise a clear error instead of saving a broken model.
    Safe on Keras' callback threads: batches may be checked out of order,
    so the earliest bad one is kept; training stops a step or two later.
    """

    async_safe = True

    def __init__(self):
        super().__init__()
        self.epoch = 0
        self.where = None
        self._lock = threading.Lock()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        where = (self.epoch + 1, batch + 1)
        with self._lock:
            if self.where is None or where < self.where:
                self.where = where
        self.model.stop_training = True


class EpochTimer(keras.callbacks.Callback):
    """Records wall-clock seconds of every training epoch."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


class EpochBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` at epoch frequency, marked safe for async dispatch.

    With `save_freq="epoch"` its batch hook does nothing. Given the run's
    `EpochCheckpoints` (placed before it in the callback list), it does not
    serialize the model a second time: the backup's weights file is the
    `model.weights.h5` inside the `last.keras` just written (Keras writes
    both with the same `_save_state` walk, optimizer included). The files
    are replaced atomically, so a kill mid-save keeps the previous backup.
    """

    async_safe = True
    WEIGHTS_IN_KERAS_FILE = "model.weights.h5"

    def __init__(self, backup_dir, checkpoints=None, delete_checkpoint=True):
        super().__init__(
            backup_dir, save_freq="epoch", delete_checkpoint=delete_checkpoint
        )
        self.checkpoints = checkpoints

    def _save_model(self):
        ckpt = self.checkpoints
        if ckpt is None or ckpt.saved_epoch != self._current_epoch - 1:
            return super()._save_model()
        os.makedirs(self.backup_dir, exist_ok=True)
        with atomic_path(self._weights_path) as tmp:
            with zipfile.ZipFile(ckpt.last_path) as archive:
                with archive.open(self.WEIGHTS_IN_KERAS_FILE) as src:
                    with open(tmp, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        write_json(
            self._training_metadata_path,
            {"epoch": self._current_epoch, "batch": 0},
            indent=None,
        )


class EpochTensorBoard(keras.callbacks.TensorBoard):
    """`TensorBoard` with epoch summaries only (no per-batch hooks).

    Keras' TensorBoard calls `tf.summary.scalar` for every batch metric
    even with `update_freq="epoch"` (no writer is set, so nothing is
    written). This one skips the batch hooks, so no profiling and no
    batch summaries; epoch summaries, histograms and images are Keras'.
    """

    async_safe = True

    def __init__(self, log_dir, **kwargs):
        kwargs.update(update_freq="epoch", profile_batch=0)
        super().__init__(log_dir, **kwargs)

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def on_train_batch_end(self, batch, logs=None):
        pass

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass


class EpochCheckpoints(keras.callbacks.Callback):
    """`last.keras` every epoch and `best.keras` when `monitor` improves.

    The model is serialized once per epoch; `best.keras` is a file copy of
    `last.keras` (two `ModelCheckpoint`s serialized it twice). Both files
    are replaced atomically, so a kill mid-save leaves the previous one.

    Args:
        directory: folder of the two files.
        monitor: the log key to rank epochs by, e.g. `"val_accuracy"`.
        mode: `"max"` or `"min"`.
        best: the best value of earlier epochs (a resumed run), or `None`.
    """

    async_safe = True
    LAST = "last.keras"
    BEST = "best.keras"

    def __init__(self, directory, monitor, mode="max", best=None):
        super().__init__()
        self.directory = directory
        self.monitor = monitor
        self.mode = mode
        self.best = best
        self.last_path = os.path.join(directory, self.LAST)
        self.saved_epoch = None

    def _improved(self, value):
        if value is None or not math.isfinite(value):
            return False
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        last = self.last_path
        with atomic_path(last) as tmp:
            self.model.save(tmp)
        self.saved_epoch = epoch
        value = (logs or {}).get(self.monitor)
        value = None if value is None else float(value)
        if self._improved(value):
            self.best = value
            copy_file(last, os.path.join(self.directory, self.BEST))
