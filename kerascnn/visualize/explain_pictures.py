"""`kerascnn visualize SOURCE explain IMAGE...`: why the model chose a class.

Each image becomes one row: the input, its heat map over it (jet, half
transparent) and the top classes with their probabilities, labelled with
the method, the explained class and (for Grad-CAM) the layer. One PNG per
image, and a grid with every row when there are several.

SOURCE is a run directory, a `.keras` file or an exported SavedModel
(version or model folder). A SavedModel is explained through its
`serving_default` signature's input gradients, so only integrated
gradients and SmoothGrad apply there (Grad-CAM needs the Keras layers).
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from kerascnn.data import preprocess_images
from kerascnn.errors import KerasCNNError
from kerascnn.export import layout
from kerascnn.metadata import MODEL_FILENAME, ModelMetadata
from kerascnn.predict import _preprocessing, _saved_model_dir
from kerascnn.tasks import load_model_and_metadata
from kerascnn.visualize import _figure
from kerascnn.visualize.curves import trained_epochs
from kerascnn.visualize.explain_methods import (
    CAM_METHODS,
    Explainer,
    Explanation,
    SignatureModel,
)
from kerascnn.visualize.feature_maps import load_input

CELL_PX = 220
TEXT_PX = 260
ROW_PX = CELL_PX + 40
TITLE_PX = 40
MARGIN_PX = 12
WIDTH_PX = 2 * CELL_PX + TEXT_PX + 4 * MARGIN_PX
TOP_CLASSES = 3
METHOD_LABELS = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "integrated-gradients": "integrated gradients",
    "smoothgrad": "SmoothGrad",
}


@dataclasses.dataclass
class ExplainedImage:
    """One row of the picture.

    Attributes:
        name: the image's file name.
        image: displayable uint8 `(H, W, C)`.
        heat: the map `(H, W)` in [0, 1].
        explained: the explained class's name.
        top: `[(class name, probability)]`, most likely first.
    """

    name: str
    image: np.ndarray
    heat: np.ndarray
    explained: str
    top: list


# === Sources ===


def load_explained_model(source):
    """`(Keras model or signature callable, ModelMetadata)` of a run
    directory, `.keras` file or SavedModel folder."""

    source = os.fspath(source)
    version_dir = _saved_model_dir(source)
    if version_dir is None:
        model, meta = load_model_and_metadata(source)
    else:
        found = layout.read_metadata(version_dir)
        if found is None:
            raise KerasCNNError(
                f"{version_dir!r} has no kerascnn metadata: not a kerascnn "
                "export."
            )
        meta = ModelMetadata.from_dict(found)
        model = SignatureModel(tf.saved_model.load(version_dir))
    _figure.require_picture(
        meta, "explain", "explain draws why an image classifier chose a class"
    )
    return model, meta


def class_index_of(meta, name):
    """The index of class `name` (a class name, or an index as text)."""
    names = [str(n) for n in meta.class_names]
    if str(name) in names:
        return names.index(str(name))
    shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    raise KerasCNNError(
        f"{meta.model!r} has no class {name!r}; its classes: {shown}."
    )


def black_baseline(meta):
    """Integrated gradients' baseline: an all-black image, preprocessed."""

    spec = _preprocessing(meta)
    height, width, channels = meta.input_shape
    black = np.zeros((1, height, width, channels), np.uint8)
    return np.asarray(preprocess_images(black, spec), np.float32)


def explain_files(
    source, image_paths, method="gradcam", class_name=None, layer=None
):
    """`(Explanation, [ExplainedImage])` for image files through a model."""

    model, meta = load_explained_model(source)
    if not image_paths:
        raise KerasCNNError("explain needs at least one image file.")
    inputs = [load_input(path, meta) for path in image_paths]
    x = np.concatenate([batch for batch, _ in inputs])
    options = {}
    if method == "integrated-gradients":
        options["baseline"] = black_baseline(meta)
    explainer = Explainer(model, layer)
    wanted = None if class_name is None else class_index_of(meta, class_name)
    result = explainer.explain(x, method, wanted, **options)
    rows = [
        ExplainedImage(
            name=os.path.basename(path),
            image=image,
            heat=heat,
            explained=_class_name(meta, c),
            top=_top(meta, probs),
        )
        for path, (_, image), heat, c, probs in zip(
            image_paths,
            inputs,
            result.maps,
            result.class_index,
            result.probabilities,
        )
    ]
    return result, rows


def _class_name(meta, index):
    names = meta.class_names
    return str(names[index]) if index < len(names) else str(index)


def _top(meta, probs):
    best = np.argsort(probs)[::-1][:TOP_CLASSES]
    return [(_class_name(meta, int(i)), float(probs[i])) for i in best]


# === Figures ===


def method_label(method):
    """The method's name as the papers write it."""
    return METHOD_LABELS.get(method, method)


def _describe(explanation):
    label = method_label(explanation.method)
    if explanation.method in CAM_METHODS and explanation.layer:
        label += f" of {explanation.layer}"
    return f"{label} ({explanation.score})"


def _draw_row(fig, row, top, describe):
    shown = row.image[..., 0] if row.image.shape[-1] == 1 else row.image
    grey = row.image.shape[-1] == 1
    left = MARGIN_PX
    for i, overlay in enumerate((False, True)):
        ax = _figure.pixel_axes(
            fig, left + i * (CELL_PX + MARGIN_PX), top + 20, CELL_PX, CELL_PX
        )
        ax.imshow(
            shown,
            cmap="gray" if grey else None,
            vmin=0,
            vmax=255,
            interpolation="nearest",
        )
        if overlay:
            ax.imshow(
                row.heat, cmap="jet", alpha=0.5, vmin=0, vmax=1,
                interpolation="bilinear",
            )  # fmt: skip
        ax.set_title(
            f"heat map: {row.explained}" if overlay else row.name,
            fontsize=9,
        )
        ax.set_axis_off()
    text_left = 3 * MARGIN_PX + 2 * CELL_PX
    fig_w, fig_h = fig.get_size_inches() * _figure.DPI
    lines = [describe, f"explained class: {row.explained}", "", "top classes:"]
    lines += [f"  {name}: {p:.1%}" for name, p in row.top]
    fig.text(
        text_left / fig_w,
        1 - (top + 30) / fig_h,
        "\n".join(lines),
        fontsize=10,
        va="top",
        family="monospace",
    )


def explain_figure(rows, explanation, title):
    """A figure with one row per `ExplainedImage`."""
    height = TITLE_PX + len(rows) * ROW_PX
    fig = _figure.new_figure(WIDTH_PX, height)
    fig.suptitle(title, fontsize=11, y=1 - 10 / height, va="top")
    describe = _describe(explanation)
    for i, row in enumerate(rows):
        _draw_row(fig, row, TITLE_PX + i * ROW_PX, describe)
    return fig


def _subset(explanation, i):
    return Explanation(
        maps=explanation.maps[i : i + 1],
        class_index=explanation.class_index[i : i + 1],
        probabilities=explanation.probabilities[i : i + 1],
        method=explanation.method,
        layer=explanation.layer,
        score=explanation.score,
    )


def _out_paths(source, rows, out):
    """One path per image, and the grid's path (or `None` for one image).

    With `out`, a single image is written there; several go beside it as
    `<out stem>_<image stem>.png` with the grid at `out` itself.
    """
    stems = [os.path.splitext(row.name)[0] for row in rows]
    if len(set(stems)) < len(stems):  # the same name twice: number them
        stems = [f"{i + 1}_{stem}" for i, stem in enumerate(stems)]
    if len(rows) == 1:
        return [out or _figure.default_out(source, f"explain_{stems[0]}")], None
    grid = out or _figure.default_out(source, "explain_grid")
    base = os.path.splitext(grid)[0]
    return [f"{base}_{stem}.png" for stem in stems], grid


def draw_explain(
    source, image_paths, method="gradcam", class_name=None, layer=None,
    out=None,
):  # fmt: skip
    """Writes the explanation PNGs; returns their paths (grid last)."""

    explanation, rows = explain_files(
        source, list(image_paths), method, class_name, layer
    )
    run = os.path.basename(os.path.normpath(source))
    title = f"Why {run} chose each class: {method_label(method)}"
    singles, grid = _out_paths(source, rows, out)
    written = []
    for i, (row, path) in enumerate(zip(rows, singles)):
        fig = explain_figure([row], _subset(explanation, i), title)
        written.append(_figure.save_png(fig, path))
    if grid:
        fig = explain_figure(rows, explanation, title)
        written.append(_figure.save_png(fig, grid))
    if _figure.run_dir_of(source) and _is_run(source):
        _figure.log_image(
            source, "explain", written[-1], trained_epochs(source)
        )
    return written


def _is_run(source):

    return os.path.isfile(os.path.join(source, MODEL_FILENAME))
