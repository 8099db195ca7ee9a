"""Classify image files with a trained model: `predict_files`.

Files are decoded with `tf.io.decode_image` (PNG, JPEG, GIF, BMP), then
converted to the model's channels and size and normalized exactly as the
training data was (`kerascnn.data.preprocess_images` with the run's
`preprocessing` metadata).
"""

import os

import numpy as np

from kerascnn.errors import DataError, KerasCNNError


def read_image(path):
    """Decodes one image file to uint8 `(H, W, C)`; clear error if not one."""
    import tensorflow as tf

    if not os.path.isfile(path):
        raise DataError(f"No such image file: {path!r}")
    with open(path, "rb") as f:
        data = f.read()
    try:
        return tf.io.decode_image(data, expand_animations=False).numpy()
    except (tf.errors.InvalidArgumentError, ValueError):
        raise DataError(
            f"Cannot decode {path!r}: not a PNG, JPEG, GIF or BMP image."
        ) from None


def predict_files(source, files, top_k=3):
    """Top-k classes of each image file.

    Args:
        source: run directory or `.keras` file.
        files: image paths.
        top_k: classes to return per image. Defaults to `3`.

    Returns:
        A list of `{"file", "top_k": [{"class_id", "class_name",
        "probability"}]}` in input order.
    """
    from kerascnn.data import preprocess_images
    from kerascnn.metadata import load_model_and_metadata

    model, meta = load_model_and_metadata(source)
    if meta.task != "image_classification":
        raise KerasCNNError(
            f"predict classifies images; {meta.model!r} is a "
            f"{meta.task.replace('_', ' ')} model."
        )
    spec = _preprocessing(meta)
    batch = np.stack(
        [np.asarray(preprocess_images(read_image(f), spec)) for f in files]
    )
    probs = np.asarray(model.predict(batch, verbose=0), dtype=np.float64)
    k = min(top_k, probs.shape[-1])
    results = []
    for path, row in zip(files, probs):
        best = np.argsort(-row)[:k]
        results.append(
            {
                "file": path,
                "top_k": [
                    {
                        "class_id": int(i),
                        "class_name": _name(meta, i),
                        "probability": float(row[i]),
                    }
                    for i in best
                ],
            }
        )
    return results


def _preprocessing(meta):
    spec = dict(meta.preprocessing or {})
    height, width, channels = meta.input_shape
    spec.setdefault("scale", 1.0 / 255.0)
    spec["channels"] = channels
    spec["image_size"] = [height, width]
    return spec


def _name(meta, index):
    names = meta.class_names
    return names[index] if index < len(names) else str(index)
