"""`kerascnn fit / evaluate / predict` through click's CliRunner."""

import json

import pytest

from cli.main import cli


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, data_dir):
    from click.testing import CliRunner

    run_dir = tmp_path_factory.mktemp("cli") / "run"
    result = CliRunner().invoke(
        cli,
        [
            "fit",
            "lenet",
            "--data-dir",
            data_dir,
            "--limit",
            "1000",
            "--eval-limit",
            "500",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--no-export",
            "--log-format",
            "json",
            "--run-dir",
            str(run_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    return run_dir, result


def test_fit_prints_json_lines(trained_run):
    _, result = trained_run
    lines = [
        json.loads(line)
        for line in result.stdout.splitlines()
        if line.startswith("{")
    ]
    assert lines[0]["epoch"] == 1 and "val_accuracy" in lines[0]
    assert lines[-1]["test"]["num_examples"] == 500


def test_evaluate_prints_confusion_matrix(runner, trained_run, data_dir):
    run_dir, _ = trained_run
    result = runner.invoke(
        cli,
        ["evaluate", str(run_dir), "--data-dir", data_dir, "--limit", "300"],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["num_examples"] == 300
    assert sum(map(sum, metrics["confusion_matrix"])) == 300


def test_predict_non_image_is_one_clear_line(runner, trained_run, tmp_path):
    run_dir, _ = trained_run
    bogus = tmp_path / "a.jpg"
    bogus.write_bytes(b"\x00\x01garbage")
    result = runner.invoke(cli, ["predict", str(run_dir), str(bogus)])
    assert result.exit_code == 1
    assert "Cannot decode" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "lenet9"], "Unknown model 'lenet9'"),
        (["fit", "lenet", "--dataset", "nope"], "Unknown data set 'nope'"),
        (["fit", "lenet", "--optimizer", "adagrad"], "'adagrad' is not one of"),
        (["fit", "lenet", "--epochs", "-2"], "`epochs` must be a positive"),
        (["evaluate", "/no/such/run"], "does not exist"),
    ],
)
def test_bad_flags_give_one_clear_line(
    runner, args, message, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
