"""Training on real data: run directory, metrics, resume, NaN, predict."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from kerascnn.config import recipe_for
from kerascnn.errors import InvalidArgumentError, TrainingError
from kerascnn.train import fit
from tests.helpers import tagger_metadata


def test_one_epoch_on_2000_digits_learns(lenet_fit):
    # Measured: 0.85-0.90 on the first 2,000 test digits after one epoch
    # of 2,000 (plain Keras on the same data: 0.81-0.88).
    assert lenet_fit.metrics["accuracy"] > 0.85
    assert lenet_fit.metrics["num_examples"] == 2000


def test_run_directory_has_every_file(lenet_fit):
    run = lenet_fit.run_dir
    for name in (
        "config.json",
        "metadata.json",
        "model.keras",
        "history.csv",
        "history.json",
        "metrics.json",
        "checkpoints/best.keras",
        "checkpoints/last.keras",
    ):
        assert os.path.isfile(os.path.join(run, name)), name
    assert os.listdir(os.path.join(run, "logs", "train"))
    assert not os.path.exists(os.path.join(run, "backup"))  # done: removed
    with open(os.path.join(run, "config.json")) as f:
        config = json.load(f)
    assert config["model"] == "lenet" and config["limit"] == 2000
    with open(os.path.join(run, "metadata.json")) as f:
        meta = json.load(f)
    assert meta["class_names"] == [str(i) for i in range(10)]
    assert meta["input_shape"] == [28, 28, 1]
    with open(os.path.join(run, "metrics.json")) as f:
        metrics = json.load(f)
    confusion = np.array(metrics["confusion_matrix"])
    assert confusion.shape == (10, 10) and confusion.sum() == 2000
    assert lenet_fit.history["epoch"] == [1]


def test_evaluate_reproduces_the_run_metrics(lenet_fit, data_dir):
    from kerascnn.tasks import evaluate

    metrics = evaluate(lenet_fit.run_dir, data_dir=data_dir, limit=2000)
    assert metrics["accuracy"] == pytest.approx(
        lenet_fit.metrics["accuracy"], abs=1e-6
    )
    assert metrics["loss"] == pytest.approx(lenet_fit.metrics["loss"])
    assert set(metrics["per_class_accuracy"]) == {str(i) for i in range(10)}


def test_predict_reads_real_png_and_jpeg(lenet_fit, data_dir, tmp_path):
    import tensorflow as tf

    from kerascnn.data import read_idx
    from kerascnn.predict import predict_files

    images = read_idx(
        os.path.join(data_dir, "mnist", "t10k-images-idx3-ubyte.gz")
    )[:20]
    labels = read_idx(
        os.path.join(data_dir, "mnist", "t10k-labels-idx1-ubyte.gz")
    )[:20]
    files = []
    for i, image in enumerate(images):
        pixels = tf.constant(image.reshape(28, 28, 1))
        if i % 2:
            path, data = tmp_path / f"{i}.png", tf.io.encode_png(pixels)
        else:  # RGB and larger: predict must convert and resize
            rgb = tf.image.resize(tf.image.grayscale_to_rgb(pixels), [56, 56])
            path = tmp_path / f"{i}.jpg"
            data = tf.io.encode_jpeg(tf.cast(rgb, tf.uint8), quality=95)
        path.write_bytes(data.numpy())
        files.append(str(path))
    results = predict_files(lenet_fit.run_dir, files, top_k=3)
    predicted = [r["top_k"][0]["class_id"] for r in results]
    assert np.mean(np.array(predicted) == labels) >= 0.8
    assert all(len(r["top_k"]) == 3 for r in results)
    assert results[1]["top_k"][0]["class_name"] == str(predicted[1])


def test_predict_reports_a_non_image_and_answers_the_rest(lenet_fit, tmp_path):
    import tensorflow as tf

    from kerascnn.predict import predict_files

    bogus = tmp_path / "notes.png"
    bogus.write_text("not an image")
    good = tmp_path / "blank.png"
    good.write_bytes(tf.io.encode_png(np.zeros((28, 28, 1), np.uint8)).numpy())
    missing = str(tmp_path / "none_*.png")
    bad, answered, unmatched = predict_files(
        lenet_fit.run_dir, [str(bogus), str(good), missing]
    )
    assert bad["file"] == str(bogus) and "top_k" not in bad
    assert re.search("notes.png.*not a PNG, JPEG", bad["error"])
    assert len(answered["top_k"]) == 3 and "error" not in answered
    assert unmatched == {
        "file": missing,
        "error": "no file matches this pattern",
    }


def test_nan_loss_stops_with_one_line_and_exports_nothing(
    runner, tmp_path, data_dir, monkeypatch
):
    from cli.main import cli

    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        cli,
        [
            "fit", "lenet", "--data-dir", data_dir, "--epochs", "2",
            "--limit", "256", "--eval-limit", "100", "--optimizer", "sgd",
            "--lr", "1e6", "--export", "--export-dir", "exported",
            "--run-dir", "run", "--log-format", "json",
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if "Error" in line]
    assert len(errors) == 1, result.output
    assert re.fullmatch(
        r"Error: Training stopped: the loss became NaN/inf at epoch \d+, "
        r"batch \d+ \(learning rate 1e\+06\)\. Lower --lr or check the "
        r"data; nothing was exported\.",
        errors[0],
    )
    # Export is on, yet no SavedModel version (nor its parent) was written.
    assert not os.path.exists(tmp_path / "exported")
    assert not (tmp_path / "run" / "model.keras").exists()
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_slot_tagger_trains_end_to_end(tmp_path, data_dir):
    config = recipe_for(
        "slot_tagger",
        data_dir=data_dir,
        epochs=4,
        limit=1000,
        eval_limit=200,
        learning_rate=1e-2,
        batch_size=32,
        schedule="constant",
        runs_root=str(tmp_path),
        export=False,
        log_format="quiet",
        model_options={"units": 32, "embedding_dim": 32},
    )
    result = fit(config)
    m = result.metrics
    for key in (
        "slot_f1",
        "slot_precision",
        "slot_recall",
        "token_accuracy",
        "intent_accuracy",
    ):
        assert 0.0 <= m[key] <= 1.0, key
    assert m["token_accuracy"] > 0.7  # 'O' alone is ~63% of ATIS tokens
    assert m["slot_f1"] > 0.2
    assert m["num_examples"] == 200


def test_wrong_task_is_refused(tmp_path, data_dir):
    config = recipe_for(
        "lenet",
        dataset="atis",
        data_dir=data_dir,
        runs_root=str(tmp_path),
        export=False,
    )
    with pytest.raises(
        TrainingError,
        match=r"^Model 'lenet' does image classification on images, but data "
        r"set 'atis' holds tagged text \(for sequence tagging\)\.$",
    ):
        fit(config)


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"epochs": -1}, "epochs"),
        ({"optimizer": "adagrad"}, "optimizer"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": 0.0}, "learning"),
    ],
)
def test_bad_settings_are_rejected(overrides, match):
    with pytest.raises(InvalidArgumentError, match=match):
        recipe_for("lenet", **overrides)


def _fit_command(run_dir=None, epochs=3):
    cmd = [
        sys.executable,
        "-m",
        "cli.main",
        "fit",
        "lenet",
        "--limit",
        "6000",
        "--epochs",
        str(epochs),
        "--eval-limit",
        "500",
        "--batch-size",
        "64",
        "--no-export",
        "--log-format",
        "json",
    ]
    return cmd + (["--run-dir", run_dir] if run_dir else [])


def _wait_for_epochs(runs_root, n, proc, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read()
            if isinstance(err, bytes):
                err = err.decode(errors="replace")
            err = err[-3000:]
            raise AssertionError(f"training ended before it was killed:\n{err}")
        for csv in [
            *runs_root.glob("lenet-*/history.csv"),
            *runs_root.glob("run/history.csv"),
        ]:
            lines = csv.read_text().strip().splitlines()
            backup = csv.parent / "backup"
            if (
                len(lines) - 1 >= n
                and backup.is_dir()
                and any(backup.iterdir())
            ):
                return csv.parent
        time.sleep(0.2)
    raise AssertionError("no epoch finished in time")


def test_sigkill_then_same_command_resumes(tmp_path, data_dir):
    env = {
        **os.environ,
        "KERASCNN_DATA_DIR": data_dir,
        "PYTHONPATH": os.getcwd(),
    }
    proc = subprocess.Popen(
        _fit_command(),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        run_dir = _wait_for_epochs(tmp_path / "runs", 1, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done_before = len((run_dir / "history.csv").read_text().splitlines()) - 1
    assert done_before < 3

    again = subprocess.run(
        _fit_command(),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"Resuming {os.path.join('runs', run_dir.name)}" in again.stderr
    epochs = [
        json.loads(line)["epoch"]
        for line in again.stdout.splitlines()
        if line.startswith('{"epoch"')
    ]
    assert epochs and epochs[0] > 1  # did not start over
    history = json.loads((run_dir / "history.json").read_text())
    assert history["epoch"] == [1, 2, 3]
    assert len(list((tmp_path / "runs").iterdir())) == 1


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_keeps_the_backup_and_exits_cleanly(tmp_path, data_dir):
    env = {
        **os.environ,
        "KERASCNN_DATA_DIR": data_dir,
        "PYTHONPATH": os.getcwd(),
    }
    run_dir = tmp_path / "run"
    # Far more epochs than the test waits for, and the signal only once an
    # epoch is on disk: the run cannot end before Ctrl-C however slow or
    # fast the machine is (with 3 epochs, a loaded machine once finished
    # the run before the signal arrived).
    # A shell that starts the suite in the background (`.ci/run &`, nohup)
    # hands its children SIGINT ignored, and Python then installs no
    # Ctrl-C handler: the child gets the default disposition back, as a
    # terminal gives it.
    proc = subprocess.Popen(
        _fit_command(str(run_dir), epochs=10_000),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    try:
        _wait_for_epochs(tmp_path, 1, proc)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # the signal was not obeyed: fail, no hang
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1
    assert "Interrupted after" in stderr and "run the same command" in stderr
    assert "Traceback" not in stderr
    assert (run_dir / "interrupted.keras").is_file()
    assert any((run_dir / "backup").iterdir())


@pytest.mark.parametrize(
    "model, monitor",
    [("lenet", "val_accuracy"), ("slot_tagger", "val_slot_f1")],
)
def test_checkpoint_monitor_follows_the_task(
    model, monitor, tmp_path, data_dir
):
    from kerascnn.callbacks import EpochCheckpoints, EpochTimer, StopOnNaN
    from kerascnn.tasks.sequence_tagging.dev_span_f1 import DevSpanF1
    from kerascnn.train import make_callbacks

    # The data set name plays no part: only the model's task does.
    config = recipe_for(model, dataset="renamed", data_dir=data_dir)
    meta = tagger_metadata(["<pad>", "O"], ["<pad>", "<unk>"], ["flight"])
    callbacks = make_callbacks(
        config, str(tmp_path), StopOnNaN(), EpochTimer(), meta
    )
    (checkpoints,) = [c for c in callbacks if isinstance(c, EpochCheckpoints)]
    assert checkpoints.monitor == monitor
    dev = [i for i, c in enumerate(callbacks) if isinstance(c, DevSpanF1)]
    if model == "slot_tagger":  # logs val_slot_f1 before the checkpoint
        assert dev == [callbacks.index(checkpoints) - 1]
    else:
        assert dev == []


def test_ctrl_c_in_the_first_epoch_says_nothing_was_kept(tmp_path):
    from kerascnn.train import RunInterrupted, _removed_if_no_epoch

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")
    with pytest.raises(RunInterrupted) as error:
        with _removed_if_no_epoch(str(run_dir), remove=True):
            raise RunInterrupted("Interrupted after 0 complete epoch(s).")
    assert str(error.value).startswith(
        "Interrupted before the first epoch finished: nothing was kept"
    )
    assert not run_dir.exists()
