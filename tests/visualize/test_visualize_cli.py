"""`kerascnn visualize` through click's CliRunner: files, errors, startup."""

import os
import shutil
import subprocess
import sys

import pytest

from cli.main import cli
from kerascnn.visualize import _figure, feature_maps
from kerascnn.visualize.filters import PANEL_PX, SINGLE_EXTRA_PX
from tests.visualize.pictures import assert_not_blank, png_pixels


@pytest.fixture
def saved_texts(monkeypatch):
    """`{png path: every text of the figure saved there}` for the
    pictures the command writes (what the picture says, not only that it
    is not blank)."""
    texts = {}
    save_png = _figure.save_png

    def recording_save_png(fig, path):
        texts[os.fspath(path)] = _figure.figure_texts(fig)
        return save_png(fig, path)

    monkeypatch.setattr(_figure, "save_png", recording_save_png)
    return texts


@pytest.mark.parametrize(
    "args",
    [
        ["filters", "--compare-init"],
        ["curves"],
        ["confusion"],
    ],
)
def test_each_lenet_picture(runner, lenet_run, tmp_path, args):
    out = str(tmp_path / "picture.png")
    result = runner.invoke(cli, ["visualize", lenet_run, *args, "-o", out])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"Wrote {out}"
    assert_not_blank(png_pixels(out))


def test_feature_maps_with_layers(
    runner, lenet_run, digit_png, tmp_path, saved_texts
):
    out = str(tmp_path / "maps.png")
    result = runner.invoke(
        cli,
        ["visualize", lenet_run, "feature-maps", digit_png,
         "--layers", "c1_conv,s2_pool", "--out", out],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    pixels = png_pixels(out)
    assert_not_blank(pixels)
    # One labelled grid per chosen layer, in the order given, and no other
    # (by default LeNet shows every conv and pool block).
    headers = [t for t in saved_texts[out] if "   output " in t]
    assert [h.split()[0] for h in headers] == ["c1_conv", "s2_pool"]
    assert headers[0].startswith("c1_conv   output 28x28x6")
    # The picture's height holds exactly those two grids (6 channels: one
    # row of cells each).
    one_row = feature_maps.HEADER_PX + feature_maps.CELL_PX
    assert pixels.shape[0] == (
        feature_maps.TOP_PX + feature_maps.INPUT_PX + 2 * one_row + 8
    )


def test_default_out_is_inside_the_run(runner, lenet_run):
    result = runner.invoke(cli, ["visualize", lenet_run, "filters"])
    assert result.exit_code == 0, result.output
    pixels = png_pixels(os.path.join(lenet_run, "filters.png"))
    assert pixels.shape[1] == PANEL_PX + 2 * SINGLE_EXTRA_PX  # one panel


def test_tags_png_and_html(runner, tagger_run, tmp_path):
    sentence = "cheapest flights from boston to denver"
    png, page = str(tmp_path / "t.png"), str(tmp_path / "t.html")
    result = runner.invoke(cli, ["visualize", tagger_run, "tags", sentence,
                                 "-o", png])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert_not_blank(png_pixels(png))
    result = runner.invoke(cli, ["visualize", tagger_run, "tags", sentence,
                                 "--html", "-o", page])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "<html>" in open(page).read()


def _history_copy(run, folder):
    """A run folder holding only `run`'s training history."""
    folder.mkdir()
    for name in ("history.csv", "history.json"):
        shutil.copy(os.path.join(run, name), folder / name)
    return str(folder)


def test_curves_compare_arguments(runner, lenet_run, tmp_path, saved_texts):
    second = _history_copy(lenet_run, tmp_path / "second-run")
    third = _history_copy(lenet_run, tmp_path / "third-run")
    out = str(tmp_path / "c.png")
    result = runner.invoke(
        cli,
        ["visualize", lenet_run, "curves", "--compare", second, third,
         "-o", out],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert_not_blank(png_pixels(out))
    texts = saved_texts[out]
    # Both the --compare run and the one after it are drawn, in order,
    # each with its own labelled train and validation lines.
    name = os.path.basename(os.path.normpath(lenet_run))
    assert f"Training curves: {name} vs second-run vs third-run" in texts
    for run in (name, "second-run", "third-run"):
        assert f"{run} train" in texts and f"{run} validation" in texts


def _one_line_error(result, expected):
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert expected in lines[0]


def test_feature_maps_of_a_non_image_file(runner, lenet_run, text_file):
    result = runner.invoke(
        cli, ["visualize", lenet_run, "feature-maps", text_file]
    )
    _one_line_error(result, "not a PNG, JPEG, GIF or BMP image")


def test_tags_on_an_image_model(runner, lenet_run):
    result = runner.invoke(cli, ["visualize", lenet_run, "tags", "to boston"])
    _one_line_error(result, "'lenet' is an image classification model")


def test_curves_without_history(runner, lenet_run, tmp_path):
    model = os.path.join(lenet_run, "model.keras")
    os.symlink(model, tmp_path / "model.keras")
    result = runner.invoke(
        cli, ["visualize", str(tmp_path / "model.keras"), "curves"]
    )
    _one_line_error(result, "No training history")


def test_help_lists_the_pictures(runner):
    result = runner.invoke(cli, ["--help"])
    assert "visualize" in result.output
    result = runner.invoke(cli, ["visualize", "--help"])
    assert result.exit_code == 0
    for name in ("filters", "feature-maps", "curves", "confusion", "tags"):
        assert name in result.output


def test_kerascnn_help_imports_neither_matplotlib_nor_tensorflow():
    code = (
        "import sys\n"
        "from cli.main import cli\n"
        "try:\n"
        "    cli(['--help'], prog_name='kerascnn')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('matplotlib', 'tensorflow')"
        " if m in sys.modules))\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True,
        cwd=root, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
