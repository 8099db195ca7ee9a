from cli.main import cli


def test_help_lists_commands(runner):
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("models", "summary"):
        assert command in result.output


def test_version(runner):
    import kerascnn

    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert kerascnn.__version__ in result.output


def test_models_table(runner):
    result = runner.invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["name", "family", "default", "input"]
    lenet = next(line for line in lines if line.startswith("lenet "))
    assert "61,706" in lenet and "28x28x1" in lenet and "LeCun" in lenet
    assert any(
        line.startswith("vgg16 ") and "138,357,544" in line for line in lines
    )


def test_summary_vgg16_total(runner):
    result = runner.invoke(cli, ["summary", "vgg16"])
    assert result.exit_code == 0, result.output
    assert "Total params: 138,357,544" in result.output
    assert "block5_conv3 (Conv2D)" in result.output
    assert "GFLOPs" in result.output or "G FLOPs" in result.output


def test_summary_with_shape_classes_and_options(runner):
    result = runner.invoke(
        cli,
        [
            "summary",
            "lenet",
            "-i",
            "32,32,1",
            "-n",
            "5",
            "-o",
            "variant=classic",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "AveragePooling2D" in result.output
    assert "(None, 5)" in result.output


def test_unknown_model_is_one_clear_line(runner):
    result = runner.invoke(cli, ["summary", "lenet7"])
    assert result.exit_code != 0
    assert "Unknown model 'lenet7'" in result.output
    assert "resnet20" in result.output
    assert "Traceback" not in result.output


def test_bad_input_shape_is_a_usage_error(runner):
    result = runner.invoke(cli, ["summary", "lenet", "-i", "a,b"])
    assert result.exit_code == 2
    assert "comma-separated integers" in result.output


def test_help_does_not_import_tensorflow():
    import subprocess
    import sys

    # -X importtime lists every module the interpreter imports (stderr).
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cli.main", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Usage:" in result.stdout
    imported = [
        line.split("|")[-1].strip() for line in result.stderr.splitlines()
    ]
    assert "click" in imported  # the list does hold the CLI's imports
    assert not [
        m for m in imported if m.split(".")[0] in ("tensorflow", "keras")
    ]


def test_models_says_what_the_default_recipes_reached(runner):
    result = runner.invoke(cli, ["models", "lenet*"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = lines.index(
        "Default recipes (`kerascnn fit MODEL`; --recipe paper: the paper's):"
    )
    (lenet,) = [line for line in lines[start:] if "lenet on mnist" in line]
    assert "kerascnn fit lenet" in lenet
    assert not any("resnet20" in line for line in lines)  # filtered out
