"""`fit --weights` from the command line: one-line errors that leave no
run folder, and the lines that say what was loaded and chosen."""

import os
import shutil

import keras
import pytest

from cli.main import cli
from kerascnn import models


@pytest.fixture(scope="module")
def photos(data_dir, tmp_path_factory):
    """cat/dog/frog, 12 real CIFAR-10 JPEGs each."""
    root = tmp_path_factory.mktemp("weights_cli") / "photos"
    for name in ("cat", "dog", "frog"):
        src = os.path.join(data_dir, "cifar10", "train", name)
        os.makedirs(root / name)
        for f in sorted(os.listdir(src))[:12]:
            shutil.copy(os.path.join(src, f), root / name / f)
    return str(root)


@pytest.mark.parametrize(
    "weights, line",
    [
        (
            "imagenet",
            "resnet20 has no ImageNet weights; models with them: resnet50, "
            "resnet101, resnet152, vgg16, vgg19 (got --weights 'imagenet')",
        ),
        (
            "notes.txt",
            "--weights must be 'imagenet', a .h5, .weights.h5 or .keras "
            "file, or a kerascnn run directory (got 'notes.txt')",
        ),
        ("gone.h5", "No such weights file: gone.h5 (got --weights 'gone.h5')"),
    ],
)
def test_bad_weights_are_one_line(runner, weights, line, tmp_path,
                                  monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["fit", "resnet20", "--weights", weights])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == f"Error: {line}"
    assert not os.path.exists(tmp_path / "runs")


def test_weights_of_another_model_are_refused_before_training(
    runner, photos, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    models.build("resnet32", input_shape=(32, 32, 3), num_classes=3).save(
        "resnet32.keras"
    )
    result = runner.invoke(
        cli, ["fit", "resnet20", "-d", photos, "--weights", "resnet32.keras"]
    )
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "Error: Weights resnet32.keras do not fit resnet20: it has layers "
        "the model lacks (conv2_block4_1_bn, conv2_block4_1_conv, "
        "conv2_block4_2_bn and 21 more); they were saved from another "
        "architecture."
    )
    runs = tmp_path / "runs"
    assert not os.path.isdir(runs) or os.listdir(runs) == []


def test_fit_from_a_run_says_what_it_loaded_and_chose(
    runner, photos, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    source = models.build("resnet20", input_shape=(32, 32, 3), num_classes=7)
    os.makedirs("source")
    source.save("source/model.keras")
    result = runner.invoke(
        cli,
        ["fit", "resnet20", "-d", photos, "--weights", "source", "--epochs",
         "2", "--no-export", "--run-dir", "run", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines()
             if line.startswith("note: ")]  # fmt: skip
    train_images = 36 - round(36 * 0.2)  # 20% held out
    assert (
        f"note: {photos} has {train_images} training images, so the "
        "small-data recipe: 2 epochs of batch 32 (2 steps), pad-4 crop and "
        "flip, label smoothing 0.1 (flags such as --epochs override it)"
    ) in notes
    assert (
        "note: Weights: source (42 layers loaded; new: predictions); 1 "
        "head-only epoch(s), then all layers but batch norm at 0.005"
    ) in notes
