"""Tasks: the registry, what each built-in task decides, and the seam.

The seam test trains, evaluates and checkpoints a task defined only in
the test suite (`tests/tasks/counting.py`) through the library's `fit`.
"""

import json
import os
import subprocess
import sys

import pytest

from kerascnn import models, tasks
from kerascnn.errors import KerasCNNError
from kerascnn.metadata import ModelMetadata

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def test_every_model_task_is_registered():
    used = {models.get_model_info(n).task for n in models.list_models()}
    assert used <= set(tasks.task_names())
    assert {"image_classification", "sequence_tagging"} <= used


def test_unknown_task_is_one_line():
    with pytest.raises(KerasCNNError, match="Unknown task 'counting'; known"):
        tasks.get_task("counting")


@pytest.mark.parametrize(
    "shape, name",
    [((28, 28, 1), "image_classification"), ((None,), "sequence_tagging")],
)
def test_task_for_input_shape(shape, name):
    assert tasks.task_for_input_shape(shape).name == name


def test_task_for_an_unknown_rank_says_so():
    with pytest.raises(KerasCNNError, match=r"No task takes inputs of shape"):
        tasks.task_for_input_shape((4, 4))


def test_builtin_tasks_pick_their_checkpoint_and_losses():
    image, tagger = tasks.IMAGE_CLASSIFICATION, tasks.SEQUENCE_TAGGING
    assert (image.checkpoint_monitor, image.checkpoint_mode) == (
        "val_accuracy",
        "max",
    )
    assert tagger.checkpoint_monitor == "val_slot_f1"
    loss, metrics = tagger.loss_and_metrics(lambda: "ce")
    assert loss == {"tags": "ce", "intent": "ce"}
    assert set(metrics) == {"tags", "intent"}
    assert image.loss_and_metrics(lambda: "ce") == ("ce", ["accuracy"])


def test_require_names_what_the_model_is():
    meta = ModelMetadata(model="slot_tagger", task="sequence_tagging")
    with pytest.raises(KerasCNNError) as e:
        tasks.require(meta, picture="confusion", what="confusion draws X")
    assert str(e.value) == (
        "confusion draws X; 'slot_tagger' is a sequence tagging model."
    )
    assert (
        tasks.require(meta, inputs="text", what="-") is tasks.SEQUENCE_TAGGING
    )


def test_register_task_rejects_what_is_not_a_task():
    with pytest.raises(KerasCNNError, match="named Task instance"):
        tasks.register_task("counting")


def test_a_task_from_outside_the_library_trains_and_evaluates(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "tests.tasks.counting", str(run_dir)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # Learned: the rounded count is right for nearly every test image.
    assert out["metrics"]["accuracy"] >= 0.9
    assert out["metrics"]["mae"] < 0.3
    # `kerascnn.evaluation.evaluate(run)` asks the same task.
    assert out["evaluate"]["mae"] == pytest.approx(out["metrics"]["mae"])
    # The task's loss and metric reached the logs and the run's files.
    assert {"loss", "mae", "val_loss", "val_mae"} <= set(out["history"])
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["task"] == "counting"
    # The task's "min" monitor picked the epoch with the lowest val_loss.
    best = min(out["history"]["val_loss"])
    assert out["best_val_loss"] == pytest.approx(best, rel=1e-3, abs=1e-6)
    assert best < max(out["history"]["val_loss"]) / 10
