"""`kerascnn visualize` through click's CliRunner: files, errors, startup."""

import os
import subprocess
import sys

import pytest

from cli.main import cli
from kerascnn.visualize.filters import PANEL_PX, SINGLE_EXTRA_PX
from tests.visualize.pictures import assert_not_blank, png_pixels


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


def test_feature_maps_with_layers(runner, lenet_run, digit_png, tmp_path):
    out = str(tmp_path / "maps.png")
    result = runner.invoke(
        cli,
        ["visualize", lenet_run, "feature-maps", digit_png,
         "--layers", "c1_conv,s2_pool", "--out", out],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert_not_blank(png_pixels(out))


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


def test_curves_compare_arguments(runner, lenet_run, tmp_path):
    out = str(tmp_path / "c.png")
    result = runner.invoke(
        cli,
        ["visualize", lenet_run, "curves", "--compare", lenet_run, lenet_run,
         "-o", out],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert_not_blank(png_pixels(out))


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
