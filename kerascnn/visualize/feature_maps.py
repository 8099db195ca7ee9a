"""Activations of conv and pool layers for one input image.

The image goes through the same preprocessing as `kerascnn predict` and
training (channels, size, scale, mean/std from the run's metadata). Each
chosen layer becomes one labelled grid (layer name, output shape), one cell
per channel, each scaled to its own range.
"""

import os

import keras
import numpy as np

from kerascnn.data import preprocess_images
from kerascnn.data.preview import denormalize
from kerascnn.errors import KerasCNNError
from kerascnn.predict import _preprocessing, read_image
from kerascnn.tasks import load_model_and_metadata
from kerascnn.visualize import _figure
from kerascnn.visualize.curves import trained_epochs

MAX_DEFAULT_LAYERS = 8
MAX_CHANNELS = 16  # channels drawn per layer
COLUMNS = 8
CELL_PX = 84
HEADER_PX = 26  # layer title above each grid
INPUT_PX = 150  # the input image row
TOP_PX = 36
LEFT_PX = 12
WIDTH_PX = LEFT_PX * 2 + COLUMNS * CELL_PX
_FOLLOWERS = (
    "BatchNormalization",
    "Activation",
    "ReLU",
    "LocalResponseNormalization",
)


def _kind(layer):

    if isinstance(layer, keras.layers.Conv2D):
        return "conv"
    if (
        "Pooling2D" in type(layer).__name__
        and "Global" not in type(layer).__name__
    ):
        return "pool"
    if isinstance(layer, keras.layers.Add):
        return "add"
    return None


def _is_follower(layer):
    return any(f in type(layer).__name__ for f in _FOLLOWERS)


def _block_end(layers, i):
    """Follows BN / activation / LRN layers applied to `layers[i]`."""
    end = i
    while end + 1 < len(layers) and _is_follower(layers[end + 1]):
        nxt = layers[end + 1]
        if nxt.input is not layers[end].output:
            break
        end += 1
    return layers[end]


def has_feature_maps(layer):
    """True when a layer's output is `(batch, H, W, C)`."""
    try:
        return len(layer.output.shape) == 4
    except (AttributeError, ValueError):
        return False


def default_feature_layers(model, limit=MAX_DEFAULT_LAYERS):
    """Names of each conv and pool block's output, at most `limit`.

    A convolution followed by batch norm and ReLU counts as one block (its
    last layer is shown). In residual networks the blocks are the residual
    blocks: the stem convolution, then each addition's output. With more
    than `limit` blocks, the first block and the pooling layers are kept
    when there are at least 3 pools (VGG: one picture per stage), else an
    even selection with the first and the last.
    """
    layers = list(model.layers)
    residual = any(_kind(layer) == "add" for layer in layers)
    names, convs = [], 0
    for i, layer in enumerate(layers):
        kind = _kind(layer)
        convs += kind == "conv"
        if kind is None or (kind == "conv" and residual and convs > 1):
            continue  # inside residual blocks only the sums are shown
        if kind == "add" or kind == "conv" or kind == "pool":
            end = _block_end(layers, i)
            if has_feature_maps(end) and end.name not in names:
                names.append(end.name)
    return _thin(model, names, limit)


def _thin(model, names, limit):
    """At most `limit` names: the first block and the pools, else even."""
    if len(names) > limit:
        pools = [n for n in names if _kind(model.get_layer(n)) == "pool"]
        if 3 <= len(pools) < limit:
            return [names[0]] + [n for n in pools if n != names[0]]
        keep = np.unique(np.linspace(0, len(names) - 1, limit).round())
        names = [names[int(i)] for i in keep]
    return names


def _spatial_layer_names(model):
    return [
        layer.name
        for layer in model.layers
        if has_feature_maps(layer) and type(layer).__name__ != "InputLayer"
    ]


def check_layers(model, names):
    """Refuses names that are not layers with feature maps, listing them."""
    available = _spatial_layer_names(model)
    known = {layer.name for layer in model.layers}
    for name in names:
        if name not in available:
            why = (
                f"Layer {name!r} of {model.name!r} has no feature maps"
                if name in known
                else f"{model.name!r} has no layer {name!r}"
            )
            raise KerasCNNError(
                f"{why}; layers with feature maps: {', '.join(available)}."
            )
    return list(names)


def activations(model, x, names):
    """`([(name, (H, W, C) array)], probabilities)` for one input batch."""

    probe = keras.Model(
        model.inputs[0],  # a single input: no list-structure warning
        [model.get_layer(n).output for n in names] + [model.outputs[0]],
    )
    outputs = probe(x, training=False)
    arrays = [np.asarray(keras.ops.convert_to_numpy(o)) for o in outputs]
    return list(zip(names, [a[0] for a in arrays[:-1]])), arrays[-1][0]


def _section_height(maps):
    shown = min(maps.shape[-1], MAX_CHANNELS)
    return HEADER_PX + -(-shown // COLUMNS) * CELL_PX


def feature_maps_figure(image, layer_maps, title, caption=""):
    """A figure: the input image, then one grid per `(name, maps)` layer.

    Args:
        image: the model input as displayable `(H, W, C)` uint8.
        layer_maps: `[(layer name, (H, W, C) activations), ...]`.
        title: the figure title.
        caption: text beside the input image (e.g. the prediction).
    """
    height = TOP_PX + INPUT_PX + sum(_section_height(m) for _, m in layer_maps)
    fig = _figure.new_figure(WIDTH_PX, height + 8)
    fig.suptitle(title, fontsize=11, y=1 - 10 / (height + 8), va="top")
    ax = _figure.pixel_axes(
        fig, LEFT_PX, TOP_PX + 20, INPUT_PX - 30, INPUT_PX - 30
    )
    shown = image[..., 0] if image.shape[-1] == 1 else image
    ax.imshow(shown, cmap="gray", interpolation="nearest", vmin=0, vmax=255)
    ax.set_title(f"input {'x'.join(map(str, image.shape))}", fontsize=9)
    ax.set_axis_off()
    fig.text(
        (LEFT_PX + INPUT_PX) / WIDTH_PX,
        1 - (TOP_PX + INPUT_PX / 2) / (height + 8),
        caption,
        fontsize=10,
        va="center",
    )
    top = TOP_PX + INPUT_PX
    for name, maps in layer_maps:
        _draw_layer(fig, name, maps, top, height + 8)
        top += _section_height(maps)
    return fig


def _draw_layer(fig, name, maps, top, fig_height):
    h, w, channels = maps.shape
    shown = min(channels, MAX_CHANNELS)
    which = (
        f"all {channels} channels"
        if shown == channels
        else f"first {shown} of {channels} channels"
    )
    fig.text(
        LEFT_PX / WIDTH_PX,
        1 - (top + HEADER_PX - 6) / fig_height,
        f"{name}   output {h}x{w}x{channels}   ({which})",
        fontsize=10,
        fontweight="bold",
    )
    for c in range(shown):
        r, col = divmod(c, COLUMNS)
        ax = _figure.pixel_axes(
            fig,
            LEFT_PX + col * CELL_PX + 2,
            top + HEADER_PX + r * CELL_PX + 2,
            CELL_PX - 4,
            CELL_PX - 4,
        )
        ax.imshow(maps[..., c], cmap="viridis", interpolation="nearest")
        ax.set_axis_off()


def load_input(path, meta):
    """`(model input batch (1, H, W, C), displayable uint8 image)`."""

    spec = _preprocessing(meta)  # exactly what `predict` feeds the model
    x = np.asarray(preprocess_images(read_image(path), spec), np.float32)
    return x[None], denormalize(x, spec)


def draw_feature_maps(source, image_path, out=None, layers=None):
    """Writes the feature maps of `image_path` through a model as a PNG."""

    model, meta = load_model_and_metadata(source)
    _figure.require_picture(
        meta,
        "feature-maps",
        "feature-maps draws what an image model sees",
    )
    names = (
        check_layers(model, layers)
        if layers
        else (default_feature_layers(model))
    )
    x, image = load_input(image_path, meta)
    layer_maps, probs = activations(model, x, names)
    best = int(np.argmax(probs))
    label = meta.class_names[best] if best < len(meta.class_names) else best
    fig = feature_maps_figure(
        image,
        layer_maps,
        f"Feature maps of {meta.model} for {os.path.basename(image_path)}",
        f"predicted: {label} ({float(probs[best]):.1%})",
    )
    epochs = trained_epochs(source)
    return _figure.finish(fig, source, "feature_maps", out, step=epochs)
