"""Fine-tuning from a run: head only with the backbone and BN frozen,
then all layers but BN; the small-data recipe and its one line."""

import os
import shutil

import keras
import numpy as np
import pytest

from kerascnn import fine_tune, models, small_data
from kerascnn.config import recipe_for
from kerascnn.metadata import ModelMetadata
from tests.helpers import save_run


def test_schedule_is_constant_for_the_head_then_a_tenth_decayed():
    schedule = fine_tune.FineTuneSchedule(1e-3, head_steps=10, total_steps=30)
    values = [float(schedule(step)) for step in (0, 9, 10, 20, 30)]
    np.testing.assert_allclose(
        values, [1e-3, 1e-3, 1e-4, 0.5e-4, 0.0], rtol=1e-5, atol=1e-9
    )
    config = schedule.get_config()
    assert fine_tune.FineTuneSchedule(**config).get_config() == config


@pytest.mark.parametrize(
    "epochs, freeze", [(1, 0), (2, 1), (3, 1), (10, 4), (30, 10)]
)
def test_default_freeze_epochs(epochs, freeze):
    assert fine_tune.default_freeze_epochs(epochs) == freeze


@pytest.fixture(scope="module")
def folders(data_dir, tmp_path_factory):
    """`photos`: cat/dog/frog, 16 real CIFAR-10 JPEGs each; `source`: a
    run of resnet20 for 7 other classes (random weights, batch-norm
    statistics of the photos, as a trained run's would be: frozen BN then
    normalizes) with a recorded normalization."""
    from PIL import Image

    from kerascnn.precise_bn import recompute_batch_norm_statistics

    root = tmp_path_factory.mktemp("finetune")
    for name in ("cat", "dog", "frog"):
        src = os.path.join(data_dir, "cifar10", "train", name)
        os.makedirs(root / "photos" / name)
        for f in sorted(os.listdir(src))[:16]:
            shutil.copy(os.path.join(src, f), root / "photos" / name / f)
    keras.utils.set_random_seed(5)
    model = models.build("resnet20", input_shape=(32, 32, 3), num_classes=7)
    pixels = np.stack([
        np.asarray(Image.open(os.path.join(folder, f)), np.float32)
        for folder in sorted((root / "photos").iterdir())
        for f in sorted(os.listdir(folder))
    ])  # fmt: skip
    recompute_batch_norm_statistics(model, [(pixels / 255 - 0.5) / 0.25])
    spec = {"scale": 1 / 255, "mean": [0.5, 0.5, 0.5], "std": [0.25] * 3,
            "channels": 3, "image_size": [32, 32]}  # fmt: skip
    meta = ModelMetadata(
        model="resnet20",
        input_shape=(32, 32, 3),
        class_names=list("abcdefg"),
        preprocessing=spec,
    )
    save_run(model, meta, root / "source")
    return str(root / "photos"), str(root / "source"), model


class _Snapshots(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append({
            layer.name: [w.copy() for w in layer.get_weights()]
            for layer in self.model.layers if layer.weights
        })  # fmt: skip


def test_head_only_then_all_layers_but_batch_norm(folders, tmp_path,
                                                  monkeypatch):  # fmt: skip
    from kerascnn import train

    photos, source, source_model = folders
    snapshots = _Snapshots()
    make = train.make_callbacks
    monkeypatch.setattr(
        train, "make_callbacks", lambda *a, **k: [snapshots, *make(*a, **k)]
    )
    notes = []
    config = recipe_for(
        "resnet20", dataset=photos, weights=source, epochs=2,
        freeze_epochs=1, batch_size=16, run_dir=str(tmp_path / "run"),
        export=False, log_format="quiet",
    )  # fmt: skip
    result = train.fit(config, resume=False, on_note=notes.append)

    start = {layer.name: layer.get_weights() for layer in source_model.layers
             if layer.weights}  # fmt: skip
    head_only, all_layers = snapshots.weights
    conv, bn = "conv2_block1_1_conv", "conv2_block1_1_bn"
    np.testing.assert_array_equal(head_only[conv][0], start[conv][0])
    assert not np.array_equal(all_layers[conv][0], start[conv][0])
    for epoch in (head_only, all_layers):  # BN frozen: statistics kept
        for got, want in zip(epoch[bn], start[bn]):
            np.testing.assert_array_equal(got, want)
    assert not np.array_equal(head_only["predictions"][1], all_layers[
        "predictions"][1])  # fmt: skip
    assert any("new: predictions" in note for note in notes)
    # The source run's normalization travels into this run's metadata.
    meta = ModelMetadata.load(os.path.join(result.run_dir, "metadata.json"))
    assert meta.preprocessing["mean"] == [0.5, 0.5, 0.5]
    assert meta.preprocessing["std"] == [0.25] * 3
    assert meta.class_names == ["cat", "dog", "frog"]


def test_small_folder_gets_the_small_data_recipe(folders):
    photos, source, _ = folders
    config = recipe_for("resnet20", dataset=photos)
    train_images = 48 - round(48 * 0.2)
    assert config.small_data == train_images
    assert config.batch_size == small_data.BATCH_SIZE
    steps_per_epoch = -(-train_images // small_data.BATCH_SIZE)
    assert config.epochs * steps_per_epoch >= small_data.TARGET_STEPS
    assert (config.epochs - 1) * steps_per_epoch < small_data.TARGET_STEPS
    assert config.augment == "pad_crop_flip"
    assert config.label_smoothing == small_data.LABEL_SMOOTHING
    line = small_data.describe(config)
    assert f"has {train_images} training images" in line
    assert f"{config.epochs} epochs of batch 32" in line
    # Flags win; from weights: fewer steps, the fine-tuning optimizer.
    mine = recipe_for("resnet20", dataset=photos, epochs=3, batch_size=8)
    assert (mine.epochs, mine.batch_size) == (3, 8)
    tuned = recipe_for("resnet20", dataset=photos, weights=source)
    assert tuned.optimizer == "sgd" and tuned.freeze_epochs >= 1
    assert tuned.learning_rate == small_data.FINE_TUNE_LEARNING_RATE
    assert tuned.epochs * steps_per_epoch >= small_data.FINE_TUNE_STEPS


def test_big_data_sets_keep_their_recipe():
    config = recipe_for("resnet20")
    assert config.small_data is None and config.epochs == 40  # fast recipe
    paper = recipe_for("resnet20", recipe="paper")
    assert paper.small_data is None and paper.epochs == 164
    assert small_data.describe(config) is None


def _phase_two_steps(folders, tmp_path, monkeypatch, **overrides):
    """Mean |change| of a backbone kernel over the all-layers epoch, over
    the sum of that epoch's learning rates: about 1 when every weight
    moves by a full learning rate each step."""
    from kerascnn import train

    photos, source, _ = folders
    snapshots = _Snapshots()
    make = train.make_callbacks
    monkeypatch.setattr(
        train, "make_callbacks", lambda *a, **k: [snapshots, *make(*a, **k)]
    )
    config = recipe_for(
        "resnet20", dataset=photos, weights=source, epochs=2,
        freeze_epochs=1, batch_size=8, run_dir=str(tmp_path / "run"),
        export=False, log_format="quiet", seed=0, augment=False,
        **overrides,
    )  # fmt: skip
    train.fit(config, resume=False)
    steps = -(-config.small_data // config.batch_size)
    schedule = fine_tune.FineTuneSchedule(
        config.learning_rate, steps, 2 * steps
    )
    rates = sum(float(schedule(s)) for s in range(steps, 2 * steps))
    head_only, all_layers = snapshots.weights
    conv = "conv3_block1_2_conv"
    moved = np.abs(all_layers[conv][0] - head_only[conv][0]).mean()
    return moved / rates


def test_the_switch_to_all_layers_takes_small_steps(
    folders, tmp_path, monkeypatch
):
    """The default fine-tuning optimizer moves the backbone by its
    gradients at the switch, not by a full learning rate on every weight
    (Adam's bias correction, counted from the run's start, did: ~3x)."""
    ratio = _phase_two_steps(folders, tmp_path, monkeypatch)
    adam = _phase_two_steps(
        folders, tmp_path / "adam", monkeypatch, optimizer="adam",
        learning_rate=1e-2,
    )  # fmt: skip
    # Measured: 0.05 (SGD) against 0.32 (Adam) over the 5 steps.
    assert 0 < ratio < 0.15 < adam
