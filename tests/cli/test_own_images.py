"""A user's own flat image folder, end to end through the command line:
fit (piped, as into a log) -> evaluate -> export -> predict on every
artifact kind, and the export refusal that keeps a served model's
meaning.

The folder is `<root>/<class>/*.jpg` with 3 CIFAR-10 classes copied in
(40 images each): no split folders, so 20% is held out for validation.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from cli.main import cli

CLASSES = ("cat", "dog", "frog")
PER_CLASS = 40
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # all but \t and \n


# A model folder holds its versions and the model card of its exports.
CARD_AND_V1 = ["1", "MODEL_CARD.md", "model_card.json"]


def _copy_classes(data_dir, root, classes, count):
    for name in classes:
        source = os.path.join(data_dir, "cifar10", "train", name)
        os.makedirs(root / name)
        for file in sorted(os.listdir(source))[:count]:
            shutil.copy(os.path.join(source, file), root / name / file)
    return root


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, data_dir):
    """A folder holding `photos/` and a finished run, as a user's cwd."""
    work = tmp_path_factory.mktemp("own_images")
    _copy_classes(data_dir, work / "photos", CLASSES, PER_CLASS)
    return work


@pytest.fixture(scope="module")
def fitted(workdir):
    """`kerascnn fit lenet -d photos` run as a user would, piped."""
    result = subprocess.run(
        [
            sys.executable, "-m", "cli.main", "fit", "lenet", "-d", "photos",
            "--epochs", "2", "--batch-size", "16", "--export-dir", "served",
            "--mixed-precision", "none",
        ],
        capture_output=True, text=True, timeout=300, cwd=workdir,
        env=dict(os.environ, PYTHONPATH=os.getcwd()),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = os.listdir(workdir / "runs")
    return result, workdir / "runs" / run_dir


def test_fit_trains_evaluates_and_exports_a_flat_folder(fitted, workdir):
    result, run_dir = fitted
    assert (
        "note: photos has no test split; using its held-out validation "
        "split (24 examples) instead" in result.stderr
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["split"] == "validation"
    assert metrics["num_examples"] == 24
    assert sorted(os.listdir(workdir / "served" / "lenet")) == CARD_AND_V1
    assert "validation accuracy:" in result.stdout


def test_piped_fit_output_is_plain_lines_within_totals(fitted):
    result, _ = fitted
    text = result.stdout + result.stderr
    assert not CONTROL.search(text), repr(CONTROL.search(text))
    epochs = [line for line in text.splitlines() if line.startswith("epoch")]
    assert [line.split()[1] for line in epochs] == ["1/2", "2/2"]
    for line in epochs:
        step, total = map(int, line.split()[2].split("/"))
        # 96 training images in batches of 16, 8 steps per execution.
        assert step == total == 6, line
        assert "val_loss" in line and "val_accuracy" in line
    # No TensorFlow / LiteRT C++ log lines without --verbose.
    assert not re.search(r"^[IWE]\d{4} |absl::|XNNPACK", text, re.M)


def test_logged_val_loss_equals_evaluate(fitted, runner, workdir, monkeypatch):
    _, run_dir = fitted
    monkeypatch.chdir(workdir)
    result = runner.invoke(cli, ["evaluate", str(run_dir), "--json"])
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    metrics = json.loads(line)
    with open(run_dir / "history.csv") as f:
        last = list(csv.DictReader(f))[-1]
    assert metrics["split"] == "validation"
    assert metrics["loss"] == pytest.approx(float(last["val_loss"]), rel=1e-4)
    assert metrics["accuracy"] == pytest.approx(float(last["val_accuracy"]))


def test_evaluate_prints_a_short_table(fitted, runner, workdir, monkeypatch):
    _, run_dir = fitted
    monkeypatch.chdir(workdir)
    result = runner.invoke(cli, ["evaluate", str(run_dir)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("loss ") and lines[1].startswith("accuracy ")
    assert [line.split()[0] for line in lines[-3:]] == list(CLASSES)
    assert len(lines) < 12
    # Off a terminal the progress bar is its label, once, plain.
    assert "Evaluating" in result.stderr.splitlines()
    assert not any(c in result.stderr for c in "\r\b\x1b")


@pytest.fixture(scope="module")
def exported(fitted, workdir):
    """The run also exported as TFLite (verified on the held-out split)."""
    from click.testing import CliRunner

    _, run_dir = fitted
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        result = CliRunner().invoke(
            cli, ["export", str(run_dir), "--tflite", "-b", "served"]
        )
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    assert "photos validation split (24 examples)" in result.output
    return run_dir


@pytest.mark.parametrize(
    "source",
    [
        "{run}",
        "{run}/model.keras",
        "served/lenet/1",
        "served/lenet",
        "served/lenet/lenet.tflite",
    ],
)
def test_predict_on_every_artifact_kind_with_a_bad_file(
    exported, source, runner, workdir, monkeypatch
):
    monkeypatch.chdir(workdir)
    (workdir / "broken.jpg").write_bytes(b"not an image")
    source = source.format(run=exported)
    args = ["predict", source, "photos/cat", "broken.jpg", "photos/dog/000*"]
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 1
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == PER_CLASS + 1 + 10
    assert answers[PER_CLASS]["file"] == "broken.jpg"
    assert "Cannot decode" in answers[PER_CLASS]["error"]
    good = [a for a in answers if "error" not in a]
    assert len(good) == PER_CLASS + 10
    for answer in good:
        probabilities = [p["probability"] for p in answer["top_k"]]
        assert sorted(probabilities, reverse=True) == probabilities
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-3)
        assert {p["class_name"] for p in answer["top_k"]} == set(CLASSES)
    assert result.stderr.splitlines() == [
        f"Error: 1 of {len(answers)} inputs could not be classified."
    ]


def test_predict_same_answers_from_keras_and_savedmodel(
    exported, runner, workdir, monkeypatch
):
    monkeypatch.chdir(workdir)
    tops = []
    for source in (str(exported), "served/lenet/1"):
        args = ["predict", source, "photos", "--recursive", "--json"]
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert len(lines) == PER_CLASS * len(CLASSES)
        tops.append([json.loads(line)["top_k"][0] for line in lines])
    assert [t["class_id"] for t in tops[0]] == [t["class_id"] for t in tops[1]]
    for keras_top, served_top in zip(*tops):
        assert keras_top["probability"] == pytest.approx(
            served_top["probability"], abs=1e-5
        )


def test_export_into_a_folder_with_other_classes_is_refused(
    exported, runner, workdir, data_dir, monkeypatch
):
    monkeypatch.chdir(workdir)
    _copy_classes(data_dir, workdir / "two", ("ship", "truck"), 20)
    result = runner.invoke(
        cli, ["fit", "lenet", "-d", "two", "--export-dir", "served"]
    )
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        "Error: served/lenet version 1 serves 3 classes (cat, dog, frog), "
        "this model has 2 classes (ship, truck); pass --export-name NAME "
        "to export it as a new model, or --no-export, then `kerascnn export "
        "RUN --force` to add it as a new version anyway."
    )
    assert len(os.listdir(workdir / "runs")) == 1  # checked before training
    result = runner.invoke(
        cli,
        [
            "fit", "lenet", "-d", "two", "--epochs", "1", "--export-dir",
            "served", "--export-name", "ships", "-q",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(workdir / "served" / "ships")) == CARD_AND_V1
    assert sorted(os.listdir(workdir / "served" / "lenet"))[0] == "1"
    run = max(os.listdir(workdir / "runs"))
    refused = runner.invoke(
        cli,
        ["export", os.path.join("runs", run), "-b", "served", "-n", "lenet"],
    )
    assert refused.exit_code == 1
    assert refused.output.splitlines()[1:] == [
        "Error: served/lenet version 1 serves 3 classes (cat, dog, frog), "
        "this model has 2 classes (ship, truck); pass --export-name NAME "
        "to export it as a new model, or --force to add it as a new "
        "version anyway."
    ]
    forced = runner.invoke(
        cli,
        ["export", os.path.join("runs", run), "-b", "served", "-n", "lenet",
         "--force", "--no-verify"],
    )  # fmt: skip
    assert forced.exit_code == 0, forced.output
    assert "2" in os.listdir(workdir / "served" / "lenet")


def test_data_info_states_the_split_rule(runner, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    for args, sizes, share in (
        ([], "train 96, validation 24", "20%"),
        (["--validation-split", "0.25"], "train 90, validation 30", "25%"),
    ):
        result = runner.invoke(cli, ["data", "info", "photos", *args])
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert f"splits:      {sizes}" in lines
        assert f"held out:    {share} of the images for validation" in (
            result.output
        )
