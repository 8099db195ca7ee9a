"""Pictures from tiny real runs: sizes, content, labels and errors."""

import json
import os
import shutil

import numpy as np
import pytest

from kerascnn import visualize
from kerascnn.errors import KerasCNNError
from kerascnn.visualize import (
    confusion,
    curves,
    feature_maps,
    filters,
    tags,
)
from kerascnn.visualize._figure import figure_texts
from tests.helpers import SHORT_LENET_RUN
from tests.visualize.pictures import assert_not_blank, png_pixels


def _load(run_dir):
    from kerascnn.metadata import load_model_and_metadata

    return load_model_and_metadata(run_dir)


# ============================== fit hooks ==============================


def test_fit_saves_initial_filters_and_curves(lenet_run):
    with np.load(os.path.join(lenet_run, "initial_filters.npz")) as saved:
        assert str(saved["layer"]) == "c1_conv"
        assert saved["kernel"].shape == (5, 5, 1, 6)
    pixels = png_pixels(os.path.join(lenet_run, "curves.png"))
    assert pixels.shape == (
        curves.PANEL_H_PX + curves.TITLE_PX,
        2 * curves.PANEL_W_PX,
        3,
    )
    assert_not_blank(pixels)


def test_fit_keeps_the_first_initial_filters(tmp_path):
    from kerascnn.models import build

    first = build("lenet")
    path = filters.save_initial_filters(first, str(tmp_path))
    again = build("lenet")  # other random weights, as after a restart
    assert filters.save_initial_filters(again, str(tmp_path)) == path
    with np.load(path) as saved:
        np.testing.assert_array_equal(
            saved["kernel"], np.asarray(first.get_layer("c1_conv").kernel)
        )


def test_tagger_has_no_filters_to_save(tmp_path):
    from kerascnn.models import build

    assert filters.save_initial_filters(build("slot_tagger"), tmp_path) is None
    assert not os.listdir(tmp_path)


# =============================== filters ===============================


def test_filters_compare_init_shows_changed_kernels(lenet_run, tmp_path):
    out = visualize.draw_filters(
        lenet_run, str(tmp_path / "f.png"), compare_init=True
    )
    pixels = png_pixels(out)
    grid_w = filters.PANEL_PX - 2 * filters.MARGIN_PX
    # 6 kernels of 5x5 in a 2x3 grid with 1-pixel gaps: 13 x 19 cells.
    grid_h = round(grid_w * 13 / 19)
    assert pixels.shape == (
        filters.TITLE_PX + grid_h + filters.MARGIN_PX,
        2 * filters.PANEL_PX,
        3,
    )
    assert_not_blank(pixels)
    top, left = filters.TITLE_PX, filters.MARGIN_PX
    initial = pixels[top : top + grid_h, left : left + grid_w]
    trained = pixels[
        top : top + grid_h,
        filters.PANEL_PX + left : filters.PANEL_PX + left + grid_w,
    ]
    assert initial.var() > 0 and trained.var() > 0
    changed = np.abs(initial.astype(int) - trained.astype(int)).max(-1) > 4
    assert changed.mean() > 0.05  # one epoch visibly moves the kernels


def test_filters_figure_names_the_layer_and_panels(lenet_run):
    model, _ = _load(lenet_run)
    kernel = np.asarray(model.get_layer("c1_conv").kernel)
    initial = filters.load_initial_filters(lenet_run, "c1_conv")
    assert not np.allclose(initial, kernel)  # training moved the kernels
    texts = figure_texts(
        filters.filters_figure(kernel, "c1_conv", initial, "after 1 epoch")
    )
    assert any("c1_conv" in t and "6 kernels of 5x5x1" in t for t in texts)
    assert "initial (before training)" in texts
    assert "after 1 epoch" in texts


def test_kernel_images_are_rgb_for_three_channels_and_scaled_each():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 3, 4)).astype(np.float32)
    kernel[..., 1] *= 100  # scaling is per kernel, so this one looks alike
    images = filters.kernel_images(kernel)
    assert images.shape == (4, 3, 3, 3)
    for image in images:
        assert image.min() == 0.0 and image.max() == 1.0
    assert not np.allclose(images[..., 0], images[..., 1])  # colour kept
    gray = filters.kernel_images(kernel[:, :, :1])
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])


def test_filters_compare_init_without_saved_weights(lenet_run, tmp_path):
    shutil.copy(os.path.join(lenet_run, "model.keras"), tmp_path)
    with pytest.raises(KerasCNNError, match="No initial_filters.npz"):
        visualize.draw_filters(
            str(tmp_path / "model.keras"), str(tmp_path / "f.png"), True
        )


def test_filters_refuses_the_tagger(tagger_run, tmp_path):
    with pytest.raises(KerasCNNError, match="no 2-D convolution layer"):
        visualize.draw_filters(tagger_run, str(tmp_path / "f.png"))


# ============================= feature maps ============================


def test_default_feature_layers():
    from kerascnn.models import build

    assert feature_maps.default_feature_layers(build("lenet")) == [
        "c1_conv",
        "s2_pool",
        "c3_conv",
        "s4_pool",
    ]
    resnet = build("resnet20")
    names = feature_maps.default_feature_layers(resnet)
    assert len(names) == feature_maps.MAX_DEFAULT_LAYERS
    assert names[0] == "conv1_relu"
    assert all(n.endswith("_out") for n in names[1:])
    assert names[-1] == "conv4_block3_out"
    vgg = build("vgg11", input_shape=(32, 32, 3), num_classes=10)
    assert feature_maps.default_feature_layers(vgg) == [
        "block1_conv1",
        *(f"block{i}_pool" for i in range(1, 6)),
    ]


def test_feature_maps_png(lenet_run, digit_png, tmp_path):
    out = visualize.draw_feature_maps(
        lenet_run, digit_png, str(tmp_path / "m.png")
    )
    pixels = png_pixels(out)
    fm = feature_maps
    # c1 and s2: 6 channels (1 row); c3 and s4: 16 channels (2 rows).
    height = fm.TOP_PX + fm.INPUT_PX + 4 * fm.HEADER_PX + 6 * fm.CELL_PX + 8
    assert pixels.shape == (height, fm.WIDTH_PX, 3)
    assert_not_blank(pixels)


def test_feature_maps_figure_labels_layers_and_shapes(lenet_run, digit_png):
    model, meta = _load(lenet_run)
    x, image = feature_maps.load_input(digit_png, meta)
    assert x.shape == (1, 28, 28, 1) and image.shape == (28, 28, 1)
    layer_maps, probs = feature_maps.activations(
        model, x, ["c1_conv", "s4_pool"]
    )
    assert [m.shape for _, m in layer_maps] == [(28, 28, 6), (5, 5, 16)]
    assert probs.shape == (10,)
    texts = figure_texts(
        feature_maps.feature_maps_figure(image, layer_maps, "title", "7")
    )
    joined = "\n".join(texts)
    assert "c1_conv   output 28x28x6   (all 6 channels)" in joined
    assert "s4_pool   output 5x5x16   (all 16 channels)" in joined


def test_feature_maps_chosen_layers_and_bad_names(
    lenet_run, digit_png, tmp_path
):
    out = visualize.draw_feature_maps(
        lenet_run, digit_png, str(tmp_path / "m.png"), layers=["c3_conv"]
    )
    fm = feature_maps
    height = fm.TOP_PX + fm.INPUT_PX + fm.HEADER_PX + 2 * fm.CELL_PX + 8
    assert png_pixels(out).shape[0] == height
    with pytest.raises(
        KerasCNNError, match="Layer 'c5_fc' of 'lenet' has no feature maps"
    ):
        visualize.draw_feature_maps(lenet_run, digit_png, layers=["c5_fc"])
    with pytest.raises(
        KerasCNNError,
        match="no layer 'nope'; layers with feature maps: c1_conv,",
    ):
        visualize.draw_feature_maps(lenet_run, digit_png, layers=["nope"])


def test_feature_maps_of_a_text_file(lenet_run, text_file):
    with pytest.raises(KerasCNNError, match="not a PNG, JPEG, GIF or BMP"):
        visualize.draw_feature_maps(lenet_run, text_file)


# ================================ curves ===============================


def test_curves_png_and_labels(lenet_run, tmp_path):
    pixels = png_pixels(
        visualize.draw_curves(lenet_run, str(tmp_path / "c.png"))
    )
    assert pixels.shape == (
        curves.PANEL_H_PX + curves.TITLE_PX,
        2 * curves.PANEL_W_PX,
        3,
    )
    assert_not_blank(pixels)
    history = curves.read_history(lenet_run)
    assert history["epoch"] == [1]
    texts = figure_texts(curves.curves_figure([("run", history)], "T"))
    for text in ("Loss", "Accuracy", "train", "validation", "epoch"):
        assert text in texts


def test_curves_compare_overlays_runs(lenet_run, tmp_path):
    other = tmp_path / "other-run"
    other.mkdir()
    history = curves.read_history(lenet_run)
    history = {k: v * 3 for k, v in history.items()}
    history["epoch"] = [1, 2, 3]
    (other / "history.json").write_text(json.dumps(history))
    out = visualize.draw_curves(lenet_run, str(tmp_path / "c.png"), [other])
    assert_not_blank(png_pixels(out))
    texts = figure_texts(
        curves.curves_figure(
            [("lenet-run", curves.read_history(lenet_run)),
             ("other-run", history)], "T",
        )
    )  # fmt: skip
    assert "lenet-run train" in texts and "other-run validation" in texts


def test_curves_of_the_tagger_with_span_f1():
    history = {
        "epoch": [1, 2],
        "loss": [2.0, 1.0],
        "val_loss": [1.5, 1.2],
        "tags_accuracy": [0.8, 0.9],
        "val_tags_accuracy": [0.85, 0.9],
        "intent_accuracy": [0.7, 0.8],
        "val_intent_accuracy": [0.72, 0.81],
        "val_span_f1": [0.6, 0.8],
    }
    fig = curves.curves_figure([("tagger", history)], "T")
    texts = figure_texts(fig)
    assert fig.get_size_inches()[0] * 100 == 3 * curves.PANEL_W_PX
    for text in (
        "Span F1",
        "tags accuracy train",
        "intent accuracy validation",
    ):
        assert text in texts


def test_curves_from_history_csv_of_a_killed_run(lenet_run, tmp_path):
    shutil.copy(os.path.join(lenet_run, "history.csv"), tmp_path)
    history = curves.read_history(str(tmp_path))
    assert history["epoch"] == [1] and "val_accuracy" in history


def test_curves_without_history(tmp_path):
    with pytest.raises(KerasCNNError, match="No training history"):
        visualize.draw_curves(str(tmp_path))


# ============================== confusion ==============================


def test_confusion_png_from_the_runs_metrics(lenet_run, tmp_path):
    out = visualize.draw_confusion(lenet_run, str(tmp_path / "m.png"))
    pixels = png_pixels(out)
    c = confusion
    size = 10 * c.CELL_PX
    assert pixels.shape == (
        c.MARGIN_TOP_PX + size + c.MARGIN_BOTTOM_PX,
        c.MARGIN_LEFT_PX + size + c.MARGIN_RIGHT_PX,
        3,
    )
    assert_not_blank(pixels)


def test_confusion_figure_names_classes_and_accuracy(lenet_run):
    report = confusion.stored_report(lenet_run)
    _, meta = _load(lenet_run)
    texts = figure_texts(
        confusion.confusion_figure(report, confusion._title(meta, report))
    )
    assert {str(d) for d in range(10)} <= set(texts)
    assert "predicted class" in texts and "true class" in texts
    assert any(t.startswith("Confusion matrix: lenet on mnist") for t in texts)
    acc = report["per_class_accuracy"]["3"]
    assert f"{acc:.1%}" in texts


def test_confusion_of_a_model_file_evaluates_it(lenet_run, data_dir, tmp_path):
    model_path = os.path.join(lenet_run, "checkpoints", "last.keras")
    out = visualize.draw_confusion(
        model_path,
        str(tmp_path / "m.png"),
        dataset="mnist",  # a checkpoint has no metadata beside it
        data_dir=data_dir,
        limit=200,
    )
    assert_not_blank(png_pixels(out))
    report = confusion.stored_report(lenet_run)
    # The run's own report: its eval_limit, not the 200 just drawn.
    assert (
        sum(map(sum, report["confusion_matrix"]))
        == SHORT_LENET_RUN["eval_limit"]
    )


def test_confusion_refuses_the_tagger(tagger_run):
    with pytest.raises(KerasCNNError, match="sequence tagging model"):
        visualize.draw_confusion(tagger_run)


# ================================= tags ================================


def test_tags_png_and_html(tagger_run, tmp_path):
    sentence = "Show me flights from Boston to Denver"
    pixels = png_pixels(
        visualize.draw_tags(tagger_run, sentence, str(tmp_path / "t.png"))
    )
    assert pixels.shape[1] == tags.WIDTH_PX
    assert pixels.shape[0] == tags.HEADER_PX + tags.LINE_PX + 10
    assert_not_blank(pixels)
    page = visualize.draw_tags(
        tagger_run, sentence, str(tmp_path / "t.html"), as_html=True
    )
    text = open(page).read()
    assert "Boston" in text and "intent: " in text


def test_tag_sentence_reads_one_tag_per_word(tagger_run):
    model, meta = _load(tagger_run)
    result = visualize.tag_sentence(model, meta, "flights from boston zzqx")
    assert result.words == ["flights", "from", "boston", "zzqx"]
    assert len(result.tags) == 4
    assert result.unknown == [3]
    assert result.intent in meta.intent_names
    assert 0 < result.intent_probability <= 1


def test_tags_figure_labels_each_slot():
    result = tags.TaggedSentence(
        words=["flights", "from", "new", "york", "to", "denver"],
        tags=["O", "O", "B-fromloc.city_name", "I-fromloc.city_name", "O",
              "B-toloc.city_name"],
        spans=[(2, 3, "fromloc.city_name"), (5, 5, "toloc.city_name")],
        intent="atis_flight",
        intent_probability=0.9,
    )  # fmt: skip
    texts = figure_texts(tags.tags_figure(result, "T"))
    assert "new york" in texts and "fromloc.city_name" in texts
    assert "toloc.city_name" in texts and "intent: atis_flight (90.0%)" in texts
    html = tags.tags_html(result, "T")
    assert "new york<small>fromloc.city_name</small>" in html
    assert tags.slot_colour("a", ["a", "b"]) != tags.slot_colour(
        "b", ["a", "b"]
    )


def test_tags_refuses_an_image_model(lenet_run):
    with pytest.raises(KerasCNNError, match="'lenet' is an image classif"):
        visualize.draw_tags(lenet_run, "flights to boston")


# ============================= TensorBoard =============================


def test_run_pictures_go_to_tensorboard(lenet_run):
    import tensorflow as tf

    visualize.draw_curves(lenet_run)  # default out: inside the run
    assert os.path.isfile(os.path.join(lenet_run, "curves.png"))
    folder = os.path.join(lenet_run, "logs", "pictures")
    tags_seen = set()
    for name in os.listdir(folder):
        for event in tf.compat.v1.train.summary_iterator(
            os.path.join(folder, name)
        ):
            tags_seen |= {value.tag for value in event.summary.value}
    assert "curves" in tags_seen


def test_curves_of_one_epoch_have_whole_ticks_and_two_colours():
    history = {
        "epoch": [1],
        "loss": [1.2],
        "val_loss": [1.3],
        "accuracy": [0.4],
        "val_accuracy": [0.35],
    }
    fig = curves.curves_figure([("run", history)], "T")
    for ax in fig.axes:
        assert list(ax.get_xticks()) == [1]
        assert ax.get_xlim() == (0.5, 1.5)
        train, validation = ax.get_lines()
        assert train.get_linestyle() == "-"
        assert validation.get_linestyle() == "--"
        assert train.get_color() != validation.get_color()


def test_a_three_class_confusion_title_fits_its_picture():
    from kerascnn.metadata import ModelMetadata

    report = {
        "confusion_matrix": [[8, 1, 1], [2, 7, 1], [0, 3, 7]],
        "class_names": ["cat", "dog", "frog"],
        "per_class_accuracy": {"cat": 0.8, "dog": 0.7, "frog": 0.7},
        "accuracy": 0.7333,
        "split": "validation",
    }
    meta = ModelMetadata(model="resnet20", dataset="/home/me/photos")
    fig = confusion.confusion_figure(report, confusion._title(meta, report))
    renderer = fig.canvas.get_renderer()
    (title,) = fig.texts
    box = title.get_window_extent(renderer)
    width, height = fig.canvas.get_width_height()
    assert 0 <= box.x0 and box.x1 <= width and box.y1 <= height
    assert "/home/me/photos" in title.get_text().replace("\n", " ")
