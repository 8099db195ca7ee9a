"""Encoded images reach a model's `predict_images` signature as `fit`
read them.

The signature decodes in the graph with TensorFlow's decoders, which
read neither WebP, CMYK JPEGs nor EXIF orientation, and treat alpha,
palettes and 16-bit PNGs their own way. Before a request runs, every
string fed to an image model's string input passes through
`kerascnn.data.images.normalized_bytes` (unchanged for the plain JPEG,
PNG and BMP files TensorFlow reads the same way), so the served model
sees the pixels it trained on (docs/your-own-images.md).
"""

import numpy as np

from kerascnn.data import images

IMAGE_TASK = "image_classification"


def image_channels(loaded):
    """The channels of an image model's input, from its metadata, else
    `None` (a tagger, or a SavedModel kerascnn did not write)."""
    meta = loaded.metadata or {}
    shape = meta.get("input_shape") or ()
    if len(shape) != 3 or meta.get("task", IMAGE_TASK) != IMAGE_TASK:
        return None
    return int(shape[2])


def normalized_feeds(loaded, signature, feeds):
    """`feeds` with each string of a string input normalized (see the
    module docstring); other feeds unchanged."""
    channels = image_channels(loaded)
    if channels is None:
        return feeds
    out = dict(feeds)
    for name, spec in signature.inputs.items():
        value = feeds.get(name)
        if value is None or spec.dtype.name != "string":
            continue
        array = np.asarray(getattr(value, "numpy", lambda: value)(), object)
        flat = [
            images.normalized_bytes(bytes(v), channels) for v in array.ravel()
        ]
        normalized = np.empty(len(flat), dtype=object)
        normalized[:] = flat
        out[name] = normalized.reshape(array.shape)
    return out
