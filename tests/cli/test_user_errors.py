"""Every user error is one `Error: ...` line in the command line's words,
with no traceback, and a fit that fails before training leaves no run
folder behind."""

import os

import pytest

from cli.main import cli

HELP = "(see cli fit --help)"


@pytest.mark.parametrize(
    "args, line",
    [
        (
            ["fit", "lenet", "-o", "bogus=1"],
            "unknown option -o bogus for lenet; lenet takes: variant, "
            f"activation, classifier_activation, name {HELP}",
        ),
        (
            ["summary", "lenet", "-o", "bogus=1"],
            "unknown option -o bogus for lenet; lenet takes: variant, "
            "activation, classifier_activation, name "
            "(see cli summary --help)",
        ),
        (
            ["fit", "lenet", "--epochs", "0"],
            f"--epochs must be a positive integer (got 0) {HELP}",
        ),
        (
            ["fit", "lenet", "--lr", "-1"],
            f"--lr must be a number > 0 (got -1) {HELP}",
        ),
        (
            ["fit", "lenet", "--validation-split", "1.5"],
            f"--validation-split must be a number in (0, 1) (got 1.5) {HELP}",
        ),
        (
            ["fit", "lenet", "--label-smoothing", "x"],
            f"--label-smoothing must be a number in [0, 1) (got x) {HELP}",
        ),
        (
            ["fit", "lenet", "--epoch", "1"],
            "No such option '--epoch'. (Did you mean one of: '--epochs', "
            f"'--export', '--warmup-epochs'?) {HELP}",
        ),
        (["fit"], f"Missing argument 'MODEL'. {HELP}"),
        (
            ["fit", "lenet", "-o", "novalue"],
            f"--option expected KEY=VALUE, received 'novalue' {HELP}",
        ),
    ],
)
def test_usage_errors_are_one_line(runner, args, line, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert result.output == f"Error: {line}\n"
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "args, start",
    [
        (["fit", "lenet9"], "Error: Unknown model 'lenet9'."),
        (
            ["fit", "lenet", "-d", "./no_such_folder"],
            "Error: Unknown data set './no_such_folder'",
        ),
        (
            ["fit", "lenet", "-i", "10,10,1", "--limit", "64"],
            "Error: lenet needs inputs of at least 28x28 pixels "
            "(got --input-shape 10,10,1)",
        ),
        (
            ["fit", "lenet", "-o", "variant='nope'", "--limit", "64"],
            "Error: -o variant must be one of 'modern', 'classic' (got 'nope')",
        ),
        (
            ["evaluate", "no_such_run"],
            "Error: SOURCE: Path 'no_such_run' does not exist.",
        ),
        (
            ["predict", ".", "x.png"],
            "Error: '.' is not a model kerascnn can predict with: expected "
            "a run directory, a .keras file, a SavedModel version or model "
            "folder, or a .tflite file.",
        ),
        (["data", "info", "nope"], "Error: Unknown data set 'nope'"),
    ],
)
def test_library_errors_are_one_line_and_leave_nothing(
    runner, args, start, tmp_path, monkeypatch, data_dir
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KERASCNN_DATA_DIR", data_dir)
    result = runner.invoke(cli, args)
    assert result.exit_code in (1, 2), result.output
    # Besides progress lines ("Loading mnist and building lenet..."), one.
    (line,) = [
        line for line in result.output.splitlines() if not line.endswith("...")
    ]
    assert line.startswith(start)
    assert "Received:" not in line and "=True" not in line
    assert not os.path.exists(tmp_path / "runs")


def test_failure_in_the_first_epoch_removes_the_new_run_folder(
    runner, tmp_path, monkeypatch, data_dir
):
    from kerascnn import train

    def interrupted(*args, **kwargs):
        raise train.TrainingError("stopped in epoch 1")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(train, "_run_fit", interrupted)
    result = runner.invoke(
        cli,
        ["fit", "lenet", "--data-dir", data_dir, "--limit", "64"],
    )
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "Error: stopped in epoch 1"
    # Neither the run folder nor the runs/ folder made for it is left.
    assert not (tmp_path / "runs").exists()


def test_port_in_use_is_refused_before_loading_models(runner, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(
            cli,
            [
                "serve", "-m", str(tmp_path / "no_models"),
                "--rest-api-port", str(port), "--port", "0",
            ],
        )  # fmt: skip
    assert result.exit_code == 1
    (line,) = result.output.splitlines()
    assert line.startswith(f"Error: 127.0.0.1:{port} is in use")
    assert line.endswith("pass another --rest-api-port (0: any free port).")


@pytest.mark.parametrize(
    "model", ["lenet", "resnet20", "resnet50", "vgg16", "alexnet"]
)
def test_unknown_builder_option_of_every_family_is_one_line(runner, model):
    result = runner.invoke(cli, ["summary", model, "-o", "bogus=1"])
    assert result.exit_code == 2
    (line,) = result.output.splitlines()
    assert line.startswith(f"Error: unknown option -o bogus for {model}; ")
    assert "classifier_activation" in line
