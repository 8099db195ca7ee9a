"""`kerascnn export` / `kerascnn inspect` through click's CliRunner."""

import json
import os

import pytest
from click.testing import CliRunner

from cli.export_cli import export_command, inspect_command


@pytest.fixture
def runner():
    return CliRunner()


def test_export_then_inspect(runner, lenet_run, tmp_path):
    result = runner.invoke(
        export_command, [lenet_run, "--base-dir", str(tmp_path), "--no-verify"]
    )
    assert result.exit_code == 0, result.output
    assert "Exported lenet version 1" in result.output
    result = runner.invoke(
        inspect_command, [str(tmp_path / "lenet" / "1"), "--json"]
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert "predict_images" in info["signatures"]
    assert info["metadata"]["model"] == "lenet"
    result = runner.invoke(inspect_command, [str(tmp_path / "lenet")])
    assert "signature 'serving_default'" in result.output
    assert "class_names" in result.output


def test_export_tflite_with_verification_table(
    runner,
    lenet_run,
    tmp_path,
):
    result = runner.invoke(
        export_command,
        [
            lenet_run,
            "--tflite",
            "--base-dir",
            str(tmp_path),
            "--verify-examples",
            "50",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "artifact" in result.output and "tflite" in result.output
    assert "(verified on mnist test split (50 examples))" in result.output
    assert os.path.isfile(tmp_path / "lenet" / "lenet.tflite")
    result = runner.invoke(
        inspect_command, [str(tmp_path / "lenet" / "lenet.tflite")]
    )
    assert result.exit_code == 0
    assert "float32 (1, 28, 28, 1)" in result.output


def test_user_errors_are_one_line(runner, lenet_run, tmp_path):
    (tmp_path / "x.txt").write_text("no model")
    result = runner.invoke(export_command, [str(tmp_path / "x.txt")])
    assert result.exit_code == 1
    assert "Error: " in result.output and "not a Keras model" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(export_command, [lenet_run, "-q", "int4"])
    assert result.exit_code == 2 and "int4" in result.output
    runner.invoke(
        export_command, [lenet_run, "--base-dir", str(tmp_path), "--no-verify"]
    )
    result = runner.invoke(
        export_command,
        [
            lenet_run,
            "--base-dir",
            str(tmp_path),
            "--version",
            "1",
            "--no-verify",
        ],
    )
    assert result.exit_code == 1 and "already exists" in result.output
    result = runner.invoke(inspect_command, [str(tmp_path / "x.txt")])
    assert result.exit_code == 1 and "not an exported model" in result.output


def test_export_without_test_data_needs_allow_synthetic(
    runner,
    lenet_run,
    tmp_path,
):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(lenet_run, run)
    meta = json.loads((run / "metadata.json").read_text())
    meta["dataset"] = str(tmp_path / "deleted-images")
    (run / "metadata.json").write_text(json.dumps(meta))
    args = [str(run), "--base-dir", str(tmp_path / "out")]

    result = runner.invoke(export_command, args)
    assert result.exit_code == 1
    assert "Error: Cannot verify on real test data: " in result.output
    assert "--allow-synthetic" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()

    result = runner.invoke(export_command, [*args, "--allow-synthetic"])
    assert result.exit_code == 0, result.output
    assert (
        "Warning: Verifying on synthetic inputs (max diff only, no "
        "accuracy): Cannot read the test split of " in result.output
    )
    assert (
        "(verified on synthetic inputs (64 random examples, no labels))"
        in result.output
    )
    assert "UserWarning" not in result.output
    assert "Exported lenet version 1" in result.output
