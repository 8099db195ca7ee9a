"""Training callbacks: JSON-lines logging and a clear NaN stop."""

import json
import math
import sys
import time

import keras


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
    """

    def __init__(self):
        super().__init__()
        self.epoch = 0
        self.where = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.where = (self.epoch + 1, batch + 1)
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
