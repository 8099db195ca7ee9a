"""`kerascnn visualize SOURCE explain`: image runs, SavedModels, the tagger
and the one-line errors."""

import os

import numpy as np
import pytest

from cli.main import cli
from kerascnn.visualize import explain_pictures, token_attributions
from tests.visualize.pictures import assert_not_blank, png_pixels


def _explain(runner, *args):
    return runner.invoke(cli, ["visualize", *map(str, args)])


def test_one_image_writes_one_picture(runner, lenet_run, digit_png, tmp_path):
    out = tmp_path / "why.png"
    result = _explain(
        runner, lenet_run, "explain", digit_png, "--method", "gradcam++",
        "-o", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"Wrote {out}"
    pixels = png_pixels(out)
    assert pixels.shape == (
        explain_pictures.TITLE_PX + explain_pictures.ROW_PX,
        explain_pictures.WIDTH_PX,
        3,
    )
    # The overlay cell is coloured (jet); the input cell is grey.
    top = explain_pictures.TITLE_PX + 20
    left = 2 * explain_pictures.MARGIN_PX + explain_pictures.CELL_PX
    cell = pixels[top : top + 200, left : left + 200].astype(int)
    assert np.abs(cell[..., 0] - cell[..., 2]).max() > 100
    grey = pixels[top : top + 200, 20:200].astype(int)
    assert np.abs(grey[..., 0] - grey[..., 2]).max() < 8


def test_several_images_and_a_grid(runner, lenet_run, digit_png, tmp_path):
    out = tmp_path / "grid.png"
    result = _explain(
        runner, lenet_run, "explain", digit_png, digit_png, "-m",
        "smoothgrad", "--class", "3", "-o", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    written = [line[len("Wrote ") :] for line in result.output.split("\n")[:-1]]
    stem = os.path.splitext(os.path.basename(digit_png))[0]
    assert written[-1] == str(out)
    # The same file twice: numbered, so neither overwrites the other.
    assert written[:2] == [
        str(tmp_path / f"grid_1_{stem}.png"),
        str(tmp_path / f"grid_2_{stem}.png"),
    ]
    assert all(os.path.isfile(path) for path in written)
    grid = png_pixels(out)
    assert grid.shape[0] == (
        explain_pictures.TITLE_PX + 2 * explain_pictures.ROW_PX
    )
    assert_not_blank(grid)


def test_explained_class_is_the_named_one(lenet_run, digit_png):
    explanation, rows = explain_pictures.explain_files(
        lenet_run, [digit_png], "gradcam", class_name="3"
    )
    assert explanation.class_index.tolist() == [3]
    assert rows[0].explained == "3"
    assert len(rows[0].top) == 3
    assert rows[0].top[0][1] >= rows[0].top[1][1] >= rows[0].top[2][1]


@pytest.fixture(scope="module")
def lenet_saved_model(lenet_run, tmp_path_factory):
    from kerascnn import tasks
    from kerascnn.export.saved_model import write_saved_model
    from kerascnn.metadata import load_model_and_metadata

    model, meta = load_model_and_metadata(lenet_run)
    path = tmp_path_factory.mktemp("export") / "lenet" / "1"
    write_saved_model(model, meta, str(path), tasks.IMAGE_CLASSIFICATION)
    return str(path.parent)


def test_saved_model_matches_the_keras_model(
    lenet_run, lenet_saved_model, digit_png
):
    """Through the signature the score is the probability; the Keras model
    gives the same integrated gradients when asked for probabilities."""
    from kerascnn.visualize import Explainer
    from kerascnn.visualize.feature_maps import load_input

    loaded, meta = explain_pictures.load_explained_model(lenet_saved_model)
    x, _ = load_input(digit_png, meta)
    from_signature = Explainer(loaded).integrated_gradients(x, [7])
    keras_model, _ = explain_pictures.load_explained_model(lenet_run)
    from_keras = Explainer(lambda b: keras_model(b, training=False))
    expected = from_keras.integrated_gradients(x, [7])
    np.testing.assert_allclose(from_signature[0], expected[0], atol=1e-5)


def test_saved_model_on_the_command_line(
    runner, lenet_run, lenet_saved_model, digit_png, tmp_path
):
    out = tmp_path / "sm.png"
    result = _explain(runner, lenet_saved_model, "explain", digit_png,
                      "-m", "integrated-gradients", "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert_not_blank(png_pixels(out))
    # Grad-CAM (the default) through the feature_map_gradients signature:
    # the same maps as from the run's Keras model.
    from kerascnn.visualize import Explainer
    from kerascnn.visualize.feature_maps import load_input

    result = _explain(runner, lenet_saved_model, "explain", digit_png,
                      "-o", tmp_path / "cam.png")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert_not_blank(png_pixels(tmp_path / "cam.png"))
    signature, meta = explain_pictures.load_explained_model(lenet_saved_model)
    keras_model, _ = explain_pictures.load_explained_model(lenet_run)
    x, _ = load_input(digit_png, meta)
    for method in ("gradcam", "gradcam++"):
        got = Explainer(signature).explain(x, method, 3)
        want = Explainer(keras_model).explain(x, method, 3)
        assert got.maps.max() == 1.0 and got.score == want.score == "logit"
        np.testing.assert_allclose(got.maps, want.maps, atol=1e-4)
    result = _explain(runner, lenet_saved_model, "explain", digit_png,
                      "--layer", "conv1")  # fmt: skip
    _one_line_error(result, "A SavedModel explains Grad-CAM at the layer")


def _one_line_error(result, expected):
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert expected in lines[0]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--class", "cat"], "has no class 'cat'; its classes: 0, 1, 2"),
        (["--layer", "c5_fc"], "feature maps: c1_conv, c3_conv (got --layer"),
        (["--slot", "toloc"], "--slot applies to the slot tagger"),
    ],
)
def test_bad_options(runner, lenet_run, digit_png, args, expected):
    result = _explain(runner, lenet_run, "explain", digit_png, *args)
    _one_line_error(result, expected)


def test_not_an_image(runner, lenet_run, text_file):
    result = _explain(runner, lenet_run, "explain", text_file)
    _one_line_error(result, "not a PNG, JPEG, GIF or BMP image")


# =============================== the tagger ===============================

SENTENCE = "show me flights from boston to denver"


def test_tagger_intent_attributions_are_complete(tagger_run):
    from kerascnn.metadata import load_model_and_metadata

    model, meta = load_model_and_metadata(tagger_run)
    result = token_attributions(model, meta, SENTENCE)
    assert result.intent == result.tagged.intent
    assert result.intent_scores.shape == (7,)
    total, change = result.completeness["intent"]
    assert abs(change) > 0.01
    assert total == pytest.approx(change, rel=0.05)
    other = [n for n in meta.intent_names if n != result.intent][0]
    named = token_attributions(model, meta, SENTENCE, intent=other)
    assert named.intent == other
    assert not np.allclose(named.intent_scores, result.intent_scores)


def test_tagger_on_the_command_line(runner, tagger_run, tmp_path):
    out = tmp_path / "tokens.png"
    result = _explain(runner, tagger_run, "explain", SENTENCE, "-o", out)
    assert result.exit_code == 0, result.output
    pixels = png_pixels(out)
    assert pixels.shape[1] == 1000
    assert_not_blank(pixels)
    result = _explain(runner, tagger_run, "explain", SENTENCE, "-m", "gradcam")
    _one_line_error(result, "integrated gradients over its embeddings")
    result = _explain(
        runner, tagger_run, "explain", SENTENCE, "--slot", "no.such_slot"
    )
    _one_line_error(result, "found no 'no.such_slot' slot")


def test_tagger_slot_score_is_complete_through_the_mask():
    """The slot score (tag probabilities of chosen words) on a padded
    sentence: attributions add up, and padding gets none."""
    import keras

    from kerascnn.models import build
    from kerascnn.visualize.explain_tagger import _TaggerProbe

    keras.utils.set_random_seed(1)
    model = build(
        "slot_tagger", vocab_size=30, num_classes=6, num_intents=3,
        embedding_dim=8, units=8,
    )  # fmt: skip
    ids = np.array([[4, 9, 17, 5, 0, 0]], np.int32)

    def score(out):
        return out["tags"][:, 2, 3] + out["tags"][:, 3, 1]

    scores, at_x, at_base = _TaggerProbe(model).integrated_gradients(
        ids, score, steps=50
    )
    assert scores.shape == (6,)
    np.testing.assert_array_equal(scores[4:], 0.0)  # padding: zero vectors
    expected = model(ids)["tags"].numpy()
    assert at_x == pytest.approx(expected[0, 2, 3] + expected[0, 3, 1])
    assert scores.sum() == pytest.approx(at_x - at_base, rel=0.05, abs=1e-4)
