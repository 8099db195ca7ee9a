"""Tests for `kerascnn data` (invoked on the group directly)."""

import os

import pytest
from click.testing import CliRunner

from cli.data_cli import data_group


@pytest.fixture
def runner():
    return CliRunner()


def test_info_mnist(runner, data_dir):
    result = runner.invoke(
        data_group, ["info", "mnist", "--data-dir", data_dir]
    )
    assert result.exit_code == 0, result.output
    assert "60,000" in result.output and "10,000" in result.output
    assert os.path.join(data_dir, "mnist") in result.output
    assert "IDX" in result.output


def test_info_atis(runner, data_dir):
    result = runner.invoke(data_group, ["info", "atis", "-d", data_dir])
    assert result.exit_code == 0, result.output
    assert "train 4,478" in result.output and "validation 500" in result.output


def test_unknown_name_is_one_line(runner, tmp_path):
    result = runner.invoke(
        data_group, ["info", "no_such_set", "-d", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0].startswith("Error: Unknown data set 'no_such_set'")


def test_preview_writes_png(runner, tmp_path, data_dir):
    out = tmp_path / "grid.png"
    result = runner.invoke(
        data_group,
        ["preview", "cifar10", "--out", str(out), "-n", "10", "-d", data_dir],
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\x89PNG")


def test_preview_of_text_fails_cleanly(runner, tmp_path, data_dir):
    # The README shows `data preview` on an image set and says "image data
    # sets only"; ATIS is text: one line that says so, and no file.
    out = tmp_path / "grid.png"
    result = runner.invoke(
        data_group, ["preview", "atis", "--out", str(out), "-d", data_dir]
    )
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["Error: Preview draws images; 'atis' holds tagged text."]
    assert not out.exists()
