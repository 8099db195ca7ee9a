"""Fast start: help, usage errors and `kerascnn models` import no
TensorFlow or Keras (seconds of start-up), and the static model table
the listing reads matches the registry."""

import os
import subprocess
import sys

import pytest

from cli.main import cli
from cli.model_table import MODEL_TABLE

HELP_AND_USAGE_ERRORS = [
    *[[name, "--help"] for name in sorted(cli.commands)],
    ["data", "info", "--help"],
    ["data", "preview", "--help"],
    ["visualize", "run", "curves", "--help"],
    ["fit", "lenet", "--epoch", "1"],
    ["fit", "lenet", "--epochs", "0"],
    ["export", "run", "--quantize", "int4"],
    ["models"],
    ["models", "resnet*"],
]


def _imported_modules(args, cwd):
    """Runs the CLI with `-X importtime`; returns (result, top-level
    names of every module it imported)."""
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
    )
    names = {
        line.split("|")[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    return result, names


@pytest.mark.parametrize("args", HELP_AND_USAGE_ERRORS, ids=" ".join)
def test_imports_no_tensorflow(args, tmp_path):
    (tmp_path / "run").mkdir()
    result, names = _imported_modules(args, tmp_path)
    assert "click" in names  # the list does hold the CLI's imports
    assert not names & {"tensorflow", "keras", "numpy"}, args
    if args[-1] == "--help":
        assert result.returncode == 0 and "Usage:" in result.stdout
    elif args[0] == "models":
        assert result.returncode == 0 and "resnet20" in result.stdout
    else:
        assert result.returncode == 2
        errors = [
            line
            for line in result.stderr.splitlines()
            if not line.startswith("import time:")
        ]
        assert len(errors) == 1 and errors[0].startswith("Error: ")


def test_model_table_matches_the_registry():
    from kerascnn import models
    from kerascnn.models import registry

    listed = {row[0]: row for row in MODEL_TABLE}
    assert sorted(listed) == sorted(models.list_models())
    for name, row in listed.items():
        info = models.get_model_info(name)
        shape = "x".join(
            "?" if d is None else str(d) for d in info.default_input_shape
        )
        expected_params = info.num_params
        if expected_params is None:
            expected_params = registry.build(name).count_params()
        assert row == (
            name,
            info.family,
            shape,
            expected_params,
            info.reference,
        )


def test_top_level_help_shows_whole_descriptions_and_serve(runner):
    result = runner.invoke(cli, ["--help"], terminal_width=60)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for command in cli.commands.values():
        assert command.short_help in text, command.name
    assert "..." not in text.split("Commands:")[1]
    assert "kerascnn serve " in result.output


def test_an_unknown_model_is_named_before_tensorflow_loads(tmp_path):
    result, names = _imported_modules(["fit", "lenett"], tmp_path)
    assert not names & {"tensorflow", "keras", "numpy"}
    errors = [
        line
        for line in result.stderr.splitlines()
        if not line.startswith("import time:")
    ]
    assert result.returncode == 1 and len(errors) == 1
    assert errors[0].startswith("Error: Unknown model 'lenett'. Did you mean")
    from kerascnn.errors import UnknownModelError
    from kerascnn.models import get_model_info

    with pytest.raises(UnknownModelError) as error:
        get_model_info("lenett")
    assert errors[0] == f"Error: {error.value}"  # the registry's words


def test_model_aliases_match_the_registry():
    from cli.model_table import MODEL_ALIASES, unknown_model_message
    from kerascnn.models import registry

    assert MODEL_ALIASES == registry._ALIASES
    assert unknown_model_message("LeNet-5") is None
