"""README claims about runs: a short CIFAR-10 ResNet-20 run learns, and
`--no-resume` starts afresh instead of resuming."""

import json
import os

from cli.main import cli
from kerascnn.config import TrainConfig, recipe_for
from kerascnn.train import find_resumable_run, fit

CIFAR_TRAIN = 512
CIFAR_TEST = 500
CHANCE = 0.1


def test_short_cifar10_resnet20_run_beats_chance(tmp_path, data_dir):
    config = recipe_for(
        "resnet20",
        data_dir=data_dir,
        epochs=4,
        limit=CIFAR_TRAIN,
        eval_limit=CIFAR_TEST,
        batch_size=32,
        optimizer="adam",
        learning_rate=2e-3,
        schedule="constant",
        weight_decay=0.0,
        runs_root=str(tmp_path),
        export=False,
        log_format="quiet",
    )
    result = fit(config)
    assert result.metrics["num_examples"] == CIFAR_TEST
    # Chance is 10% (+-1.3% std on 500 images); 0.17 is 5 std above it.
    assert result.metrics["accuracy"] > CHANCE + 0.07


def _fit_lenet(runner, data_dir, *flags):
    args = [
        "fit", "lenet", "--data-dir", data_dir, "--limit", "256",
        "--eval-limit", "64", "--epochs", "1", "--batch-size", "64",
        "--no-export", "--log-format", "json", *flags,
    ]  # fmt: skip
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    return result


def test_no_resume_starts_a_new_run(runner, data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _fit_lenet(runner, data_dir)
    (first,) = os.listdir("runs")
    # Make the finished run look interrupted: the backup is what a killed
    # run leaves behind, so the same command would now resume it.
    os.makedirs(os.path.join("runs", first, "backup"))
    with open(os.path.join("runs", first, "config.json")) as f:
        saved = TrainConfig.from_dict(json.load(f))
    assert find_resumable_run(saved) == os.path.join("runs", first)
    history = os.path.join("runs", first, "history.csv")
    before = open(history).read()

    result = _fit_lenet(runner, data_dir, "--no-resume")
    assert "Resuming" not in result.output
    runs = sorted(os.listdir("runs"))
    assert len(runs) == 2 and first in runs
    assert open(history).read() == before  # the old run is untouched
    (second,) = [r for r in runs if r != first]
    with open(os.path.join("runs", second, "history.json")) as f:
        assert json.load(f)["epoch"] == [1]


def test_history_csv_reader_keeps_the_last_row_of_a_resumed_epoch(tmp_path):
    from kerascnn.history import read_history_csv
    from kerascnn.runs import completed_epochs

    assert read_history_csv(tmp_path) is None
    assert completed_epochs(tmp_path) == 0
    # Epoch 1 written twice (killed after the row, resumed), NA for a
    # metric one epoch did not log, as Keras' CSVLogger writes them.
    (tmp_path / "history.csv").write_text(
        "epoch,loss,val_slot_f1\n0,2.5,0.1\n1,2.0,NA\n1,1.5,0.4\n2,1.0,0.6\n"
    )
    history = read_history_csv(tmp_path)
    assert history == {
        "loss": [2.5, 1.5, 1.0],
        "val_slot_f1": [0.1, 0.4, 0.6],
        "epoch": [1, 2, 3],
    }
    assert completed_epochs(tmp_path) == 3
