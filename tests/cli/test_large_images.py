"""An image file whose header claims more than `MAX_IMAGE_PIXELS` (a
"decompression bomb": ~70 KB of PNG that would decode to 67 million
pixels) is refused from its header by every command that reads files,
naming the file and its size, or skipped with `--skip-bad`; nothing
decodes it."""

import os

import pytest

from cli.main import cli
from kerascnn.data import images
from tests.data import messy_images
from tests.data.test_images import png_bomb

SIDE = 8200  # 67.24 million pixels, just over the 8192x8192 limit


@pytest.fixture(scope="module")
def bomb_folder(tmp_path_factory, data_dir):
    """Two classes of real CIFAR-10 photos, one valid PNG bomb among the
    cats, and a run trained without it."""
    from click.testing import CliRunner

    work = tmp_path_factory.mktemp("bomb")
    folder = work / "photos"
    for name in ("cat", "dog"):
        os.makedirs(folder / name)
        for i, path in enumerate(messy_images.cifar_files(data_dir, name, 8)):
            with open(path, "rb") as src:
                (folder / name / f"{i}.jpg").write_bytes(src.read())
    bomb = work / "bomb.png"
    bomb.write_bytes(png_bomb(SIDE, SIDE))
    run = str(work / "run")
    fitted = CliRunner().invoke(
        cli,
        ["fit", "lenet", "-d", str(folder), "--epochs", "1", "--no-export",
         "--run-dir", run, "--mixed-precision", "none", "-q"],
    )  # fmt: skip
    assert fitted.exit_code == 0, fitted.output
    placed = folder / "cat" / "huge.png"
    placed.write_bytes(bomb.read_bytes())
    return str(folder), run, str(placed)


def test_the_bomb_is_small_valid_and_over_the_limit(bomb_folder):
    _, _, bomb = bomb_folder
    assert os.path.getsize(bomb) < 200_000
    assert SIDE * SIDE > images.MAX_IMAGE_PIXELS
    with open(bomb, "rb") as f:
        assert images.encoded_size(f.read()) == (SIDE, SIDE)


def _last_line(output):
    return output.strip().splitlines()[-1]


def _folder_command(command, folder, tmp_path):
    if command == "data-info":
        return ["data", "info", folder]
    if command == "data-convert":
        return ["data", "convert", folder, str(tmp_path / "r")]
    return ["fit", "lenet", "-d", folder, "--epochs", "1", "--no-export",
            "--run-dir", str(tmp_path / "r"), "-q"]  # fmt: skip


@pytest.mark.parametrize("command", ["data-info", "data-convert", "fit"])
def test_folder_commands_name_the_file_and_its_size(
    runner, bomb_folder, tmp_path, command
):
    folder, _, bomb = bomb_folder
    args = _folder_command(command, folder, tmp_path)
    refused = runner.invoke(cli, args)
    assert refused.exit_code == 1, refused.output
    error = _last_line(refused.output)
    assert error.startswith(
        f"Error: Cannot read image file {bomb}: it is "
        f"{SIDE}x{SIDE} pixels, more than the 67,108,864"
    )
    assert "--skip-bad" in error
    assert not os.path.exists(tmp_path / "r")

    skipped = runner.invoke(cli, [*args, "--skip-bad"])
    assert skipped.exit_code == 0, skipped.output
    notes = [line for line in skipped.output.splitlines() if bomb in line]
    assert len(notes) == 1, skipped.output
    assert notes[0].startswith(
        "note: Skipped 1 bad example(s) with more than 67,108,864 pixels"
    )


def test_a_streamed_folder_never_decodes_the_file(
    runner, bomb_folder, tmp_path
):
    """Streamed (`--cache none`), each file passes `normalized_bytes`,
    which hands a file past the limit on as no bytes at all: the stream's
    check names it (or skips and counts it) without decoding it."""
    folder, _, bomb = bomb_folder
    with open(bomb, "rb") as f:
        assert images.normalized_bytes(f.read(), 1) == b""
    args = ["fit", "lenet", "-d", folder, "--cache", "none", "--epochs", "1",
            "--no-export", "-q"]  # fmt: skip
    refused = runner.invoke(cli, [*args, "--run-dir", str(tmp_path / "a")])
    assert refused.exit_code == 1, refused.output
    error = _last_line(refused.output)
    assert error.startswith("Error: Cannot ") and bomb in error, error
    assert "67,108,864" in error

    skipped = runner.invoke(
        cli, [*args, "--run-dir", str(tmp_path / "b"), "--skip-bad"]
    )
    assert skipped.exit_code == 0, skipped.output
    assert bomb in skipped.output


def test_predict_names_the_file_and_its_size(runner, bomb_folder):
    _, run, bomb = bomb_folder
    result = runner.invoke(cli, ["predict", run, bomb])
    assert result.exit_code == 1
    assert f"{SIDE}x{SIDE} pixels, more than the 67,108,864" in result.output
    assert "not a PNG" not in result.output
