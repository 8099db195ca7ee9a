"""Epoch-end callbacks: one model save per epoch, async dispatch kept."""

import json
import os
import re

import keras
import numpy as np
import pytest

from kerascnn import train
from kerascnn.callbacks import (
    EpochBackupAndRestore,
    EpochCheckpoints,
    EpochTensorBoard,
    EpochTimer,
    StopOnNaN,
)
from kerascnn.config import recipe_for


def _tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="softmax")]
    )
    model.compile(
        "adam", "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def _data():
    rng = np.random.RandomState(0)
    return rng.rand(64, 4).astype("float32"), rng.randint(0, 3, 64)


def test_the_run_callbacks_allow_keras_async_dispatch(tmp_path, monkeypatch):
    # Keras offers async dispatch on thread-safe backends only (not
    # TensorFlow); with it on, no run callback may turn it off.
    from keras.src import backend

    monkeypatch.setattr(backend, "IS_THREAD_SAFE", True)
    config = recipe_for("lenet", log_format="json")
    callbacks = train.make_callbacks(
        config, str(tmp_path), StopOnNaN(), EpochTimer()
    )
    cb_list = keras.callbacks.CallbackList(callbacks, model=_tiny_model())
    assert cb_list._async_train and cb_list._async_test
    # Keras' own versions of these would turn it off:
    plain = keras.callbacks.CallbackList(
        [keras.callbacks.ModelCheckpoint(str(tmp_path / "x.keras"))]
    )
    assert not plain._async_train


def test_backup_is_the_checkpoints_weights_and_restores(tmp_path):
    x, y = _data()
    model = _tiny_model()
    ckpt = EpochCheckpoints(str(tmp_path / "ckpt"), "accuracy", "max")
    backup = EpochBackupAndRestore(
        str(tmp_path / "backup"), ckpt, delete_checkpoint=False
    )
    model.fit(x, y, epochs=2, verbose=0, callbacks=[ckpt, backup])
    weights = tmp_path / "backup" / "latest.weights.h5"
    meta = json.loads(
        (tmp_path / "backup" / "training_metadata.json").read_text()
    )
    assert meta["epoch"] == 2

    fresh = _tiny_model(seed=1)
    fresh.fit(x[:8], y[:8], epochs=1, verbose=0)  # builds the optimizer
    fresh.load_weights(str(weights))
    for a, b in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)
    pairs = zip(model.optimizer.variables, fresh.optimizer.variables)
    for a, b in pairs:
        if "float" in str(a.dtype) or "int" in str(a.dtype):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(fresh.optimizer.iterations.numpy()) == 4  # 2 x 2 steps
    # Keras' restore path reads it and skips the finished epochs.
    again = _tiny_model(seed=2)
    seen = []
    again.fit(
        x,
        y,
        epochs=3,
        verbose=0,
        callbacks=[
            EpochBackupAndRestore(str(tmp_path / "backup")),
            keras.callbacks.LambdaCallback(
                on_epoch_begin=lambda e, logs: seen.append(e)
            ),
        ],
    )
    assert seen == [2]


def test_backup_without_a_fresh_checkpoint_saves_itself(tmp_path):
    x, y = _data()
    model = _tiny_model()
    backup = EpochBackupAndRestore(
        str(tmp_path / "backup"), checkpoints=None, delete_checkpoint=False
    )
    model.fit(x, y, epochs=1, verbose=0, callbacks=[backup])
    assert (tmp_path / "backup" / "latest.weights.h5").is_file()


def test_best_is_a_copy_of_last_when_the_monitor_improves(tmp_path):
    model = _tiny_model()
    ckpt = EpochCheckpoints(str(tmp_path), "val_accuracy", "max", best=0.5)
    ckpt.set_model(model)
    best = tmp_path / "best.keras"
    ckpt.on_epoch_end(0, {"val_accuracy": 0.4})  # worse than resumed best
    assert (tmp_path / "last.keras").is_file() and not best.exists()
    ckpt.on_epoch_end(1, {"val_accuracy": 0.7})
    assert best.read_bytes() == (tmp_path / "last.keras").read_bytes()
    stamp = os.stat(best).st_mtime_ns
    model.fit(*_data(), epochs=1, verbose=0)  # change the weights
    ckpt.on_epoch_end(2, {"val_accuracy": 0.6})
    assert os.stat(best).st_mtime_ns == stamp
    assert best.read_bytes() != (tmp_path / "last.keras").read_bytes()
    ckpt.on_epoch_end(3, {"val_accuracy": float("nan")})
    assert ckpt.best == 0.7
    assert sorted(os.listdir(tmp_path)) == ["best.keras", "last.keras"]


def test_tensorboard_writes_epoch_summaries_only(tmp_path):
    x, y = _data()
    model = _tiny_model()
    model.fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        verbose=0,
        validation_data=(x, y),
        callbacks=[EpochTensorBoard(str(tmp_path), write_graph=False)],
    )
    assert os.listdir(tmp_path / "train")
    assert os.listdir(tmp_path / "validation")


@pytest.mark.parametrize("order", [(3, 5), (5, 3)])
def test_nan_stop_keeps_the_earliest_bad_batch(order):
    stop = StopOnNaN()
    stop.set_model(_tiny_model())
    stop.on_epoch_begin(0)
    for batch in order:
        stop.on_train_batch_end(batch, {"loss": float("nan")})
    stop.on_train_batch_end(1, {"loss": 0.5})
    assert stop.where == (1, 4)
    assert stop.model.stop_training


class _Stream:
    """A text stream that says whether it is a terminal."""

    def __init__(self, tty):
        self.tty, self.text = tty, ""

    def isatty(self):
        return self.tty

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def _progress_epoch(tty, reported_steps, total=6):
    from kerascnn.callbacks import EpochProgress

    stream = _Stream(tty)
    progress = EpochProgress(epochs=3, stream=stream)
    progress.REDRAW_SECONDS = 0.0
    progress.set_params({"steps": total})
    progress.on_epoch_begin(1)
    for step in reported_steps:
        progress.on_train_batch_end(step, {"loss": 0.5})
    progress.on_epoch_end(1, {"loss": 0.5, "val_loss": 0.25})
    return stream.text


def test_progress_off_a_terminal_is_one_plain_line_per_epoch():
    # steps_per_execution=4 over 6 steps: Keras reports steps 3 and 7.
    text = _progress_epoch(tty=False, reported_steps=[3, 7])
    assert re.fullmatch(
        r"epoch 2/3  6/6  loss 0\.5000  val_loss 0\.2500  \d+\.\ds\n", text
    )


def test_progress_on_a_terminal_redraws_without_passing_the_total():
    text = _progress_epoch(tty=True, reported_steps=[3, 7])
    frames = text.split("\r")[1:]
    assert [f.split()[2] for f in frames] == ["4/6", "6/6", "6/6"]
    assert text.endswith("\033[K\n")
