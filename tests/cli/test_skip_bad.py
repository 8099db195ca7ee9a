"""One `--skip-bad` on every command that reads an image folder: `data
info` and `export`'s verification stop at a file that is empty or not
image data, naming it and the flag; with `--skip-bad` they skip it and
say so in one note (fit, evaluate and data convert: test_messy_folder.py,
tests/data/test_convert.py)."""

import os

import pytest

from cli.main import cli
from kerascnn.data import sources
from tests.data import messy_images


@pytest.fixture(scope="module")
def damaged_run(tmp_path_factory, data_dir):
    """A 3-class folder of real CIFAR-10 photos, a run trained on it, and
    then one held-out file emptied (as a disk or a sync tool may)."""
    from click.testing import CliRunner

    work = tmp_path_factory.mktemp("damaged")
    folder = work / "photos"
    for name in ("cat", "dog", "frog"):
        os.makedirs(folder / name)
        for i, path in enumerate(messy_images.cifar_files(data_dir, name, 10)):
            with (
                open(path, "rb") as src,
                open(folder / name / f"{i}.jpg", "wb") as dst,
            ):
                dst.write(src.read())
    run = str(work / "run")
    fitted = CliRunner().invoke(
        cli,
        ["fit", "lenet", "-d", str(folder), "--epochs", "1", "--no-export",
         "--run-dir", run, "--mixed-precision", "none", "-q"],
    )  # fmt: skip
    assert fitted.exit_code == 0, fitted.output
    held_out = sources.read(str(folder), "validation").paths
    open(held_out[0], "wb").close()
    return str(folder), run, held_out[0], len(held_out)


def _last_line(output):
    return output.strip().splitlines()[-1]


def test_data_info_names_an_unreadable_file_or_skips_it(runner, damaged_run):
    folder, _, empty, held_out = damaged_run

    refused = runner.invoke(cli, ["data", "info", folder])
    assert refused.exit_code == 1
    error = _last_line(refused.output)
    assert error.startswith(f"Error: Cannot read image file {empty}")
    assert "--skip-bad" in error and "skip_bad=" not in error

    skipped = runner.invoke(cli, ["data", "info", folder, "--skip-bad"])
    assert skipped.exit_code == 0, skipped.output
    notes = [n for n in skipped.output.splitlines() if empty in n]
    assert len(notes) == 1 and notes[0].startswith("note: Skipped 1 ")
    # The sizes count readable files; the rule's 20% is still the rule.
    assert f"splits:      train {30 - held_out}, validation {held_out - 1}" in (
        skipped.output
    )
    assert "held out:    20% of the images" in skipped.output


def test_export_verification_names_an_unreadable_file_or_skips_it(
    runner, damaged_run, tmp_path
):
    _, run, empty, held_out = damaged_run
    args = ["export", run, "--base-dir", str(tmp_path / "served")]

    refused = runner.invoke(cli, args)
    assert refused.exit_code == 1
    error = _last_line(refused.output)
    assert error.startswith(f"Error: Cannot decode image file {empty}") or (
        error.startswith(f"Error: Cannot read image file {empty}")
    ), error
    assert "--skip-bad" in error and "--allow-synthetic" not in error
    assert not os.path.exists(tmp_path / "served" / "lenet" / "1")

    exported = runner.invoke(cli, [*args, "--skip-bad", "--json"])
    assert exported.exit_code == 0, exported.output
    assert empty in exported.output  # named in the note
    assert f"({held_out - 1} examples)" in exported.output
    assert os.path.isdir(tmp_path / "served" / "lenet" / "1")
