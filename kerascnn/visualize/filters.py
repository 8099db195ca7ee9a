"""First-layer convolution kernels as a grid, optionally before vs after.

`fit` saves the first convolution layer's kernels at the start of a run
(`initial_filters.npz`, a few KB), so `draw_filters(..., compare_init=True)`
can show random initial noise beside the edges and blobs it became.
"""

import os

import keras
import numpy as np

from kerascnn.errors import KerasCNNError
from kerascnn.files import atomic_path
from kerascnn.tasks import load_model_and_metadata
from kerascnn.visualize import _figure
from kerascnn.visualize.curves import trained_epochs

INITIAL_FILTERS_FILENAME = "initial_filters.npz"
PANEL_PX = 360  # width of one kernel grid
TITLE_PX = 80  # band above the grids for the titles
SINGLE_EXTRA_PX = 60  # side margin of a lone panel
MARGIN_PX = 16
GAP = 1  # kernel pixels of white between kernels


def first_conv_layer(model):
    """The first 2-D convolution layer (searching nested models), or None."""

    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            return layer
        if hasattr(layer, "layers"):
            found = first_conv_layer(layer)
            if found is not None:
                return found
    return None


def save_initial_filters(model, run_dir):
    """Saves the first conv layer's kernel before training starts.

    Keeps an existing file, so a resumed run still compares against the
    weights it started from. Returns the path, or `None` for models
    without a convolution (the slot tagger).
    """
    path = os.path.join(run_dir, INITIAL_FILTERS_FILENAME)
    if os.path.isfile(path):
        return path
    layer = first_conv_layer(model)
    if layer is None:
        return None
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, kernel=_kernel(layer), layer=np.array(layer.name))
    return path


def _kernel(layer):

    return np.asarray(keras.ops.convert_to_numpy(layer.kernel), np.float32)


def load_initial_filters(source, layer_name):
    """The kernel `fit` saved for `layer_name` in the source's run dir."""
    folder = source if os.path.isdir(source) else os.path.dirname(source)
    candidates = [folder, os.path.dirname(folder)]  # run/ or run/checkpoints/
    for run_dir in candidates:
        path = os.path.join(run_dir, INITIAL_FILTERS_FILENAME)
        if os.path.isfile(path):
            with np.load(path) as saved:
                if str(saved["layer"]) != layer_name:
                    raise KerasCNNError(
                        f"{path} holds layer {str(saved['layer'])!r}, not "
                        f"{layer_name!r}: it belongs to another model."
                    )
                return saved["kernel"]
    raise KerasCNNError(
        f"No {INITIAL_FILTERS_FILENAME} next to {source!r}: --compare-init "
        "needs a run directory written by `kerascnn fit` (runs from before "
        "this feature have none)."
    )


def kernel_images(kernel):
    """`(kh, kw, in, n)` kernel -> `(n, kh, kw, 3)` images in `[0, 1]`.

    Each kernel is scaled to its own min..max (all its channels together,
    so RGB colours keep their balance). 3 input channels draw as RGB, any
    other count as gray (the mean over input channels).
    """
    k = np.moveaxis(np.asarray(kernel, np.float32), -1, 0)
    if k.shape[-1] != 3:
        k = np.repeat(k.mean(axis=-1, keepdims=True), 3, axis=-1)
    low = k.min(axis=(1, 2, 3), keepdims=True)
    span = k.max(axis=(1, 2, 3), keepdims=True) - low
    return np.where(span > 0, (k - low) / np.where(span > 0, span, 1), 0.5)


def grid_shape(count):
    """`(rows, columns)` of a near-square grid of `count` cells."""
    columns = int(np.ceil(np.sqrt(count)))
    return int(np.ceil(count / columns)), columns


def mosaic(images):
    """Tiles `(n, h, w, 3)` images into one image with white gaps."""
    n, h, w, _ = images.shape
    rows, columns = grid_shape(n)
    out = np.ones(
        (rows * (h + GAP) + GAP, columns * (w + GAP) + GAP, 3), np.float32
    )
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        top, left = GAP + r * (h + GAP), GAP + c * (w + GAP)
        out[top : top + h, left : left + w] = image
    return out


def filters_figure(kernel, layer_name, initial=None, trained_label="weights"):
    """A figure of the kernels (and, with `initial`, the initial ones)."""
    kh, kw, channels, count = kernel.shape
    panels = [(trained_label, kernel)]
    if initial is not None:
        panels.insert(0, ("initial (before training)", initial))
    rows, columns = grid_shape(count)
    grid_w = PANEL_PX - 2 * MARGIN_PX
    grid_h = int(
        round(grid_w * (rows * (kh + GAP) + GAP) / (columns * (kw + GAP) + GAP))
    )
    # One panel gets side margins so the two-line title fits.
    extra = SINGLE_EXTRA_PX if len(panels) == 1 else 0
    fig = _figure.new_figure(
        PANEL_PX * len(panels) + 2 * extra, TITLE_PX + grid_h + MARGIN_PX
    )
    colour = "RGB" if channels == 3 else "grayscale"
    fig.suptitle(
        f"First convolution layer {layer_name}: {count} kernels of "
        f"{kh}x{kw}x{channels}\n({colour}, each scaled to its own range)",
        fontsize=10,
        y=1 - 12 / (TITLE_PX + grid_h + MARGIN_PX),
        va="top",
    )
    for i, (label, weights) in enumerate(panels):
        ax = _figure.pixel_axes(
            fig, extra + i * PANEL_PX + MARGIN_PX, TITLE_PX, grid_w, grid_h
        )
        ax.imshow(mosaic(kernel_images(weights)), interpolation="nearest")
        ax.set_title(label, fontsize=10)
        ax.set_axis_off()
    return fig


def draw_filters(source, out=None, compare_init=False):
    """Writes the first conv layer's kernels of a run or model as a PNG."""

    model, meta = load_model_and_metadata(source)
    layer = first_conv_layer(model)
    if layer is None:
        raise KerasCNNError(
            f"{meta.model!r} has no 2-D convolution layer: filters draws "
            "the first conv layer of an image model."
        )
    initial = (
        load_initial_filters(os.fspath(source), layer.name)
        if compare_init
        else None
    )
    epochs = trained_epochs(source)
    label = f"after {epochs} epoch(s) of training" if epochs else "weights"
    fig = filters_figure(_kernel(layer), layer.name, initial, label)
    return _figure.finish(fig, source, "filters", out, step=epochs)
