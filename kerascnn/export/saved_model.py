"""SavedModel export: the layout and signatures TensorFlow Serving loads.

A version folder `saved_models/<name>/<version>/` holds a SavedModel with:

The signatures are the model's task's (`Task.add_serving_signatures`);
the built-in tasks add these:

Image classifiers
    `serving_default`   `images`: float32 `(batch, H, W, C)`, already
                        normalized like the training data (the Keras input).
    `predict_pixels`    `pixels`: float32 `(batch, H, W, C)` raw pixel values
                        in `[0, 255]`; scale and mean/std applied in-graph.
    `predict_images`    `images`: string `(batch,)` encoded JPEG/PNG/BMP/GIF
                        bytes of any size; decode, channel conversion,
                        resize and normalization in-graph (what TF Serving's
                        REST `{"b64": ...}` feeds).
    All three return `probabilities` float32 `(batch, classes)`,
    `class_ids` int64 `(batch,)` and `class_names` string `(batch,)`.
    `feature_map_gradients` (models with a spatial feature map): `images`
                        as `serving_default` and `class_index` int32
                        `(batch,)` (-1: the predicted class) in; out the
                        last feature map before pooling (`feature_map`,
                        `(batch, h, w, channels)`), the gradient of the
                        class's logit w.r.t. it (`gradients`; of its
                        probability where the model does not end in a
                        softmax: `logit_score` false), `probabilities`
                        and the `class_index` explained:
                        Grad-CAM's inputs, which the model server's
                        `:explain` route turns into heat maps.

The slot tagger's (`token_ids` and `sentences` in, decoded tags out) are
described in `kerascnn.tasks.sequence_tagging.export`.

Every SavedModel also has a `metadata` signature (no inputs) returning the
metadata JSON as a string, and the same JSON in
`assets/kerascnn_metadata.json`. Nothing in the graph refers to kerascnn:
custom layers are traced into plain TensorFlow ops, so the folder loads with
`tf.saved_model.load` alone.
"""

import contextlib
import json
import os
import shutil
import tempfile

from kerascnn.data.decode import decode_to_model_size
from kerascnn.errors import ExportError, KerasCNNError
from kerascnn.export import layout, named_io
from kerascnn.lazy import LazyModule

keras = LazyModule("keras")
# The zoo (Keras) loads when an export runs, not with the CLI.
probes = LazyModule("kerascnn.models.probes")
tf = LazyModule("tensorflow")

METADATA_ASSET = layout.METADATA_ASSET


# === Versions and atomic writes ===


def list_versions(model_dir):
    """Version folders under `model_dir` (see `layout`), ascending."""
    return layout.list_versions(model_dir, complete=False)


def next_version(model_dir):
    """Highest existing integer version + 1 (1 for a new model)."""
    versions = list_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def make_temp_dir(final_path):
    """A fresh hidden temp dir beside `final_path` (same file system)."""
    parent = os.path.dirname(os.path.abspath(final_path))
    os.makedirs(parent, exist_ok=True)
    base = os.path.basename(final_path)
    path = tempfile.mkdtemp(prefix=f".tmp-{base}-", dir=parent)
    # mkdtemp makes the folder private (0700); a model server running as
    # another user must be able to read the published version.
    os.chmod(path, 0o755)
    return path


def commit_dir(tmp_path, final_path, overwrite=False):
    """Renames a finished `tmp_path` to `final_path` in one step.

    An existing `final_path` is replaced only with `overwrite=True`: it is
    first moved aside, so a reader sees either the old or the new version.
    """
    old = None
    if os.path.exists(layout.check_target(final_path, overwrite)):
        old = make_temp_dir(final_path)  # empty: rename may replace it
        os.rename(final_path, old)
    try:
        os.rename(tmp_path, final_path)
    except OSError as e:
        if old:
            os.rename(old, final_path)
        raise ExportError(
            f"Cannot move the export into place at {final_path!r}: {e}"
        ) from None
    if old:
        shutil.rmtree(old, ignore_errors=True)


# === In-graph preprocessing (plain TensorFlow, no kerascnn at load time) ===


def _image_shape(model):
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3 or any(d is None for d in shape):
        raise ExportError(
            "Image export needs a fixed (H, W, C) model input. "
            f"Received: input_shape={shape}"
        )
    return shape


def make_normalizer(preprocessing):
    """Returns `fn(pixels) -> model input` for float pixels in [0, 255].

    Applies `x * scale + offset`, then `(x - mean) / std`, the order of
    `DatasetInfo.preprocessing`. Missing keys are identities.
    """

    scale = float(preprocessing.get("scale", 1.0))
    offset = float(preprocessing.get("offset", 0.0))
    mean = preprocessing.get("mean")
    std = preprocessing.get("std")

    def normalize(pixels):
        x = tf.cast(pixels, tf.float32) * scale
        if offset:
            x = x + offset
        if mean is not None:
            x = x - tf.constant(mean, tf.float32)
        if std is not None:
            x = x / tf.constant(std, tf.float32)
        return x

    return normalize


def make_image_decoder(input_shape, center_crop=None):
    """Returns `fn(bytes (batch,)) -> float32 pixels (batch, H, W, C)`.

    The pixels `fit` trained on, for bytes already normalized
    (`kerascnn.data.images.normalized_bytes`, which `kerascnn serve` and
    `predict` apply; TensorFlow's decoders read EXIF-free 8-bit grey/RGB
    JPEG, PNG, BMP and GIF): JPEGs with the accurate DCT, images of
    another size resized by `decode.resize_pixels`. With `center_crop`
    (the ImageNet style's `preprocessing["center_crop"]`, e.g. 0.875) the
    centred square of that fraction of the shorter side is cut first, as
    in evaluation: `kerascnn.data.decode.decode_to_model_size`, per image.
    """

    def decode_one(data):
        return decode_to_model_size(data, input_shape, center_crop)

    def decode(batch):
        return tf.map_fn(
            decode_one,
            batch,
            fn_output_signature=tf.TensorSpec(input_shape, tf.float32),
        )

    return decode


# === Signatures ===


def _classifier_outputs(probabilities, class_names):
    """`named_io.classifier_outputs` plus `class_names` strings."""

    outputs = named_io.classifier_outputs(probabilities)
    outputs["class_names"] = tf.gather(class_names, outputs["class_ids"])
    return outputs


def add_image_signatures(archive, model, meta):
    """`serving_default` (`images`), `predict_pixels`, `predict_images`."""

    shape = _image_shape(model)
    names = tf.constant([str(n) for n in class_names(model, meta)])
    normalize = make_normalizer(meta.preprocessing)
    decode = make_image_decoder(shape, meta.preprocessing.get("center_crop"))

    def predict(x):
        probs = tf.cast(model(x, training=False), tf.float32)
        return _classifier_outputs(probs, names)

    archive.add_endpoint(
        "serving_default",
        lambda images: predict(images),
        input_signature=[
            tf.TensorSpec((None, *shape), tf.float32, name="images")
        ],
    )
    archive.add_endpoint(
        "predict_pixels",
        lambda pixels: predict(normalize(pixels)),
        input_signature=[
            tf.TensorSpec((None, *shape), tf.float32, name="pixels")
        ],
    )
    archive.add_endpoint(
        "predict_images",
        lambda images: predict(normalize(decode(images))),
        input_signature=[tf.TensorSpec((None,), tf.string, name="images")],
    )
    _add_feature_map_gradients(archive, model, shape)


def _add_feature_map_gradients(archive, model, shape):
    """The `feature_map_gradients` signature, when the model has a
    spatial feature map (`kerascnn.models.probes.default_layer`)."""
    try:
        path = probes.default_layer(model)
    except KerasCNNError:
        return  # nothing for Grad-CAM to weight (a flat model)
    traced, logits = probes.scored_probe(model, path)

    def gradients(images, class_index):
        feature_map, grads, probs, classes = probes.feature_map_gradients(
            traced, logits, images, class_index
        )
        return {
            "feature_map": feature_map,
            "gradients": grads,
            "probabilities": probs,
            "class_index": classes,
            # Per row, as TF Serving wants every output batched.
            "logit_score": tf.fill(tf.shape(classes), logits is not None),
        }

    archive.add_endpoint(
        "feature_map_gradients",
        gradients,
        input_signature=[
            tf.TensorSpec((None, *shape), tf.float32, name="images"),
            tf.TensorSpec((None,), tf.int32, name="class_index"),
        ],
    )


def class_names(model, meta):
    """The model's class names (its metadata's, else numbers), checked
    against its output width (a tagger's `tags` output)."""
    output = model.output
    if isinstance(output, dict):
        output = output["tags"]
    num_classes = int(output.shape[-1])
    names = list(meta.class_names) or [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise ExportError(
            f"Metadata lists {len(names)} class names but the model has "
            f"{num_classes} outputs."
        )
    return names


def build_archive(model, meta, task):
    """A `keras.export.ExportArchive` with every signature of this model:
    its task's (`task.add_serving_signatures`) and `metadata`."""

    archive = keras.export.ExportArchive()
    archive.track(model)
    task.add_serving_signatures(archive, model, meta)
    text = json.dumps(meta.to_dict(), sort_keys=True)
    archive.add_endpoint(
        "metadata",
        lambda: {"metadata": tf.constant(text)},
        input_signature=[],
    )
    return archive


def write_saved_model(model, meta, path, task):
    """Writes the SavedModel (signatures + metadata asset) into `path`;
    returns `path`. `task` is the model's `Task` (its signatures)."""
    archive = build_archive(model, meta, task)
    archive.write_out(path, verbose=False)
    assets = os.path.join(path, "assets")
    os.makedirs(assets, exist_ok=True)
    with open(os.path.join(assets, METADATA_ASSET), "w") as f:
        json.dump(meta.to_dict(), f, indent=2, sort_keys=True)
    return path


@contextlib.contextmanager
def staged_folder(final_path, overwrite=False):
    """Yields a hidden temp folder beside `final_path` to write and check
    an export in; renames it to `final_path` when the block ends, or
    removes it when the block raises (`final_path` is then untouched)."""
    layout.check_target(final_path, overwrite)
    tmp = make_temp_dir(final_path)
    try:
        yield tmp
        commit_dir(tmp, final_path, overwrite=overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
