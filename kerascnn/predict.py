"""Classify image files with anything kerascnn exported: `predict_files`.

A model comes from one of several kinds of artifact, each with its own
loader (`artifact_loader`): a run directory or `.keras` file, a
SavedModel version folder (or a model folder: its newest version), a
`.tflite` file. A new kind (ONNX, OpenVINO) registers one more loader
that returns a `Predictor`; nothing else changes.

Files are read as `fit` reads them (`kerascnn.data.images`: JPEG, PNG,
BMP, GIF, WebP; EXIF orientation; every colour mode converted to the
model's channels; `decode.resize_pixels` to the model's size), then
normalized exactly as the training data was
(`kerascnn.data.preprocess_images` with the model's `preprocessing`
metadata). Inputs may be files, folders (their images; sub-folders with
`recursive=True`) and glob patterns; a file that cannot be read gets an
`error` in its result and the others are still answered.

A model trained on light-on-dark digits (MNIST and its kin) is shown
dark-on-light photos inverted, with a `note` in the result that says so
(`images.light_background`).
"""

import dataclasses
import glob
import os

import numpy as np
import tensorflow as tf

from kerascnn import tasks
from kerascnn.data import decode, preprocess_images, text
from kerascnn.data import images as image_files
from kerascnn.errors import DataError, KerasCNNError
from kerascnn.export import layout, tflite, verify
from kerascnn.metadata import (
    METADATA_FILENAME,
    MODEL_FILENAME,
    ModelMetadata,
    resolve_model_path,
)
from kerascnn.metrics import conll_spans
from kerascnn.tasks.sequence_tagging import tagging

IMAGE_EXTENSIONS = image_files.IMAGE_EXTENSIONS
PREDICT_BATCH = 64


def read_image(path, shape=None):
    """One image file as `fit` reads it: uint8 `(H, W, C)`.

    Args:
        path: the file.
        shape: `(H, W, C)` to decode to (the model's input); default: the
            file's size, grey or RGB as the file is.

    Raises:
        DataError: no such file, or not a readable image (one line).
    """

    if not os.path.isfile(path):
        raise DataError(f"No such image file: {path!r}")
    with open(path, "rb") as f:
        data = f.read()
    large = image_files.too_large(data)
    if large:
        raise DataError(f"Cannot read {path!r}: it is {large}; shrink it.")
    try:
        channels = shape[2] if shape else image_files.native_channels(data)
        data = image_files.normalized_bytes(data, channels)
        if shape:
            return decode.decode_to_shape(data, tuple(shape)).numpy()
        return decode.decode_image_bytes(data, channels).numpy()
    except (tf.errors.InvalidArgumentError, ValueError, OSError):
        raise DataError(
            f"Cannot decode {path!r}: not a PNG, JPEG, GIF or BMP image "
            "(nor WebP)."
        ) from None


# === Artifacts: one loader per kind ===


@dataclasses.dataclass
class Predictor:
    """A loaded model of any artifact kind, ready to classify.

    Attributes:
        kind: the loader that opened it, e.g. `"saved_model"`.
        path: what was loaded (a SavedModel model folder resolves to its
            newest version).
        meta: its `ModelMetadata` (classes, input shape, preprocessing).
        run: `(x) -> probabilities` on a batch of normalized model inputs.
    """

    kind: str
    path: str
    meta: object
    run: object


_LOADERS = {}


def artifact_loader(kind, matches):
    """Registers `load(path) -> Predictor` for paths where `matches(path)`.

    Loaders are tried in registration order.
    """

    def decorator(load):
        _LOADERS[kind] = (matches, load)
        return load

    return decorator


def open_predictor(source):
    """The `Predictor` of any artifact kind (see `artifact_loader`)."""
    source = os.fspath(source)
    for matches, load in _LOADERS.values():
        if matches(source):
            return load(source)
    raise KerasCNNError(
        f"{source!r} is not a model kerascnn can predict with: expected a "
        "run directory, a .keras file, a SavedModel version or model "
        "folder, or a .tflite file."
    )


def _is_tflite(path):
    return os.path.isfile(path) and path.lower().endswith(".tflite")


def _saved_model_dir(path):
    """`path` itself if it holds a SavedModel, its newest version if it is
    a model folder of versions, else `None`."""

    if not os.path.isdir(path):
        return None
    if layout.is_saved_model(path):
        return path
    versions = layout.list_versions(path)
    return layout.version_path(path, versions[-1]) if versions else None


@artifact_loader("tflite", _is_tflite)
def _load_tflite(path):

    with open(path, "rb") as f:
        data = f.read()
    try:
        found = tflite.read_metadata(data)
        run = verify.tflite_runner(data)
    except Exception as e:  # a truncated or foreign flatbuffer
        raise KerasCNNError(f"Cannot load TFLite model {path!r}: {e}") from None
    if found is None:
        raise KerasCNNError(
            f"{path!r} has no kerascnn metadata: its classes and "
            "preprocessing are unknown."
        )
    meta = ModelMetadata.from_dict(found)
    return Predictor("tflite", path, meta, _main_output(run, meta))


@artifact_loader("saved_model", lambda p: _saved_model_dir(p) is not None)
def _load_saved_model(path):

    version_dir = _saved_model_dir(path)
    found = layout.read_metadata(version_dir)
    if found is None:
        raise KerasCNNError(
            f"{version_dir!r} has no kerascnn metadata "
            f"(assets/{layout.METADATA_ASSET}): not a kerascnn export."
        )
    run = verify.saved_model_runner(version_dir)
    meta = ModelMetadata.from_dict(found)
    return Predictor("saved_model", version_dir, meta, _main_output(run, meta))


def _main_output(run, meta):
    """`(x) -> main output` of an artifact runner, as the model's task
    reads its outputs (`Task.compared_outputs`)."""
    task = tasks.get_task(meta.task)
    return lambda x: task.compared_outputs(run(x))[0]


def _is_keras(path):

    if os.path.isdir(path):
        return os.path.isfile(os.path.join(path, MODEL_FILENAME))
    return os.path.isfile(path) and path.endswith(".keras")


@artifact_loader("keras", _is_keras)
def _load_keras(path):
    model, meta = tasks.load_model_and_metadata(path)

    def run(x):
        return model.predict(x, verbose=0)

    return Predictor("keras", path, meta, run)


# === Inputs ===


def expand_inputs(inputs, recursive=False):
    """Files to classify from files, folders and glob patterns.

    Returns a list of `(path, error)`: `error` is `None` for a file to
    classify, else why `path` (a pattern or folder) gave nothing.
    """
    found = []
    for item in inputs:
        if os.path.isdir(item):
            files = _images_in(item, recursive)
            why = "no image files" + (
                "" if recursive else " (--recursive looks in sub-folders)"
            )
        elif glob.has_magic(item):
            files = sorted(glob.glob(item, recursive=recursive))
            files = [f for f in files if os.path.isfile(f)]
            why = "no file matches this pattern"
        else:
            files, why = [item], None
        found += [(f, None) for f in files] or [(item, why)]
    return found


def _images_in(folder, recursive):
    if recursive:
        walked = (
            os.path.join(root, name)
            for root, _, names in os.walk(folder)
            for name in names
        )
    else:
        walked = (e.path for e in os.scandir(folder) if e.is_file())
    return sorted(
        p
        for p in walked
        if image_files.is_image_name(p) and not image_files.is_hidden(p)
    )


# === Predicting ===


def predict_files(source, files, top_k=3, recursive=False):
    """Top-k classes of each image file.

    Args:
        source: a run directory, `.keras` file, SavedModel (version or
            model folder) or `.tflite` file.
        files: image paths, folders or glob patterns.
        top_k: classes to return per image. Defaults to `3`.
        recursive: look into sub-folders of folders (and `**` in
            patterns). Defaults to `False`.

    Returns:
        A list, in input order, of `{"file", "top_k": [{"class_id",
        "class_name", "probability"}]}`, or `{"file", "error"}` for an
        input that could not be classified.
    """
    predictor = open_predictor(source)
    meta = predictor.meta
    tasks.require(
        meta, predict_input="images", what="predict classifies images"
    )
    results, ready = [], []
    for path, why in expand_inputs(files, recursive):
        results.append({"file": path})
        if why:
            results[-1]["error"] = why
            continue
        try:
            ready.append((results[-1], _model_input(path, meta, results[-1])))
        except KerasCNNError as e:
            results[-1]["error"] = str(e)
    for start in range(0, len(ready), PREDICT_BATCH):
        chunk = ready[start : start + PREDICT_BATCH]
        probs = predictor.run(np.stack([x for _, x in chunk]))
        for (result, _), row in zip(chunk, np.asarray(probs, np.float64)):
            result["top_k"] = _top_k(row, meta, top_k)
    return results


def _model_input(path, meta, result):

    image = read_image(path, tuple(meta.input_shape))
    if image_files.light_on_dark(meta.dataset) and (
        image_files.light_background(image)
    ):
        image = 255 - image
        result["note"] = image_files.INVERTED_NOTE
    return np.asarray(preprocess_images(image, _preprocessing(meta)))


def _top_k(row, meta, k):
    best = np.argsort(-row)[: min(k, len(row))]
    return [
        {
            "class_id": int(i),
            "class_name": _name(meta, i),
            "probability": float(row[i]),
        }
        for i in best
    ]


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


# ============================ Slot tagger ============================

DEFAULT_MAX_WORDS = 200


def group_slots(tokens, tags):
    """IOB2 tags -> `[{"type", "value", "start", "end"}]` (end exclusive).

    Spans follow conlleval: an `I-x` that does not continue an `x` span
    opens one. `value` joins the tokens as typed.
    """

    return [
        {
            "type": kind,
            "value": " ".join(tokens[start : end + 1]),
            "start": start,
            "end": end + 1,
        }
        for start, end, kind in sorted(conll_spans(tags))
    ]


def _prepare(utterance, max_words, normalize_digits):
    """`(tokens, words, warning)` of one raw utterance."""
    if not isinstance(utterance, str):
        raise DataError(
            f"Utterances must be strings. Received: {type(utterance).__name__}"
        )
    tokens, words = text.tokenize(utterance, normalize_digits)
    warning = None
    if len(tokens) > max_words:
        warning = (
            f"utterance of {len(tokens)} words truncated to the first "
            f"{max_words}"
        )
        tokens, words = tokens[:max_words], words[:max_words]
    elif not tokens:
        warning = "empty utterance: nothing to tag"
    return tokens, words, warning


def _result(tokens, tags, intent, intent_probability, warning):
    result = {
        "tokens": tokens,
        "tags": tags,
        "slots": group_slots(tokens, tags),
        "intent": intent,
        "intent_probability": intent_probability,
    }
    if warning:
        result["warning"] = warning
    return result


def tag_utterances(source, utterances, max_words=DEFAULT_MAX_WORDS):
    """Tags raw-text utterances with a slot tagger.

    Args:
        source: a run directory / `.keras` file, or an exported SavedModel
            version folder (uses its `predict_sentences` signature).
        utterances: strings; whitespace-tokenised, lowercased and digits
            mapped to `DIGIT` as in training.
        max_words: longer utterances are cut to this many words (with a
            `warning` in the result). Defaults to `200`.

    Returns:
        One dict per utterance: `tokens` (as typed), `tags`, `slots`
        (`[{"type", "value", "start", "end"}]`, token indices, `end`
        exclusive), `intent` and `intent_probability` (`None` for an empty
        utterance or a model without an intent head), and `warning` when
        the utterance was empty or truncated.
    """
    if (
        isinstance(max_words, bool)
        or not isinstance(max_words, int)
        or (max_words < 1)
    ):
        raise KerasCNNError(
            f"max_words must be a positive integer. Received: {max_words!r}"
        )
    _refuse_image_files(utterances)
    if _saved_model_dir(source) is not None:
        version_dir = _saved_model_dir(source)
        return _tag_with_saved_model(version_dir, utterances, max_words)
    return _tag_with_keras(source, utterances, max_words)


def _refuse_image_files(utterances):
    """The tagger reads text: an image file among the inputs is refused
    instead of tagging its path as words."""
    files = [
        u for u in utterances
        if image_files.is_image_name(u.strip()) and os.path.isfile(u.strip())
    ]  # fmt: skip
    if files:
        raise DataError(
            f"The slot tagger takes text, not image files (got {files[0]}); "
            "pass utterances in quotes, or classify images with an image "
            "model."
        )


def _tag_with_keras(source, utterances, max_words):
    model, meta = tasks.load_model_and_metadata(source)
    _check_tagger(meta)
    digits = text.uses_digit_shapes(meta.vocab)
    prepared = [_prepare(u, max_words, digits) for u in utterances]
    predictor = tagging.TaggerPredictor(model, meta.vocab)
    todo = [i for i, p in enumerate(prepared) if p[0]]
    probs, intents = predictor.predict([prepared[i][1] for i in todo])
    tags = tagging.decode_tags(
        probs, [len(prepared[i][1]) for i in todo], meta.class_names
    )
    by_index = dict(zip(todo, zip(tags, intents)))
    results = []
    for i, (tokens, _, warning) in enumerate(prepared):
        row_tags, intent_p = by_index.get(i, ([], None))
        intent = probability = None
        if intent_p is not None and meta.intent_names:
            best = int(np.argmax(intent_p))
            intent = meta.intent_names[best]
            probability = float(intent_p[best])
        results.append(_result(tokens, row_tags, intent, probability, warning))
    return results


def _check_tagger(meta):
    tasks.require(
        meta,
        predict_input="text",
        what="raw-text prediction needs the slot tagger (pass image files "
        "instead)",
    )
    if len(meta.vocab or []) < 2:
        raise KerasCNNError(
            "The tagger's metadata has no vocabulary; cannot map words to ids."
        )


def _tag_with_saved_model(path, utterances, max_words):

    loaded = tf.saved_model.load(path)
    if "predict_sentences" not in loaded.signatures:
        raise KerasCNNError(
            f"{path!r} has no predict_sentences signature: not an exported "
            "slot tagger."
        )
    fn = loaded.signatures["predict_sentences"]
    prepared = [_prepare(u, max_words, True) for u in utterances]
    todo = [i for i, p in enumerate(prepared) if p[0]]
    outputs = {}
    if todo:
        joined = [" ".join(prepared[i][0]) for i in todo]
        out = fn(sentences=tf.constant(joined))
        outputs = {k: v.numpy() for k, v in out.items()}
    results = []
    for i, (tokens, _, warning) in enumerate(prepared):
        if i not in todo:
            results.append(_result(tokens, [], None, None, warning))
            continue
        row = todo.index(i)
        n = len(tokens)
        tags = [t.decode() for t in outputs["tags"][row][:n]]
        intent = probability = None
        if "intent" in outputs:
            intent = outputs["intent"][row].decode()
            probability = float(outputs["intent_probabilities"][row].max())
        results.append(_result(tokens, tags, intent, probability, warning))
    return results


def format_tagged(result):
    """Human-readable lines: `word/TAG ...`, slots, intent."""
    lines = []
    if result.get("warning"):
        lines.append(f"warning: {result['warning']}")
    lines.append(
        " ".join(f"{w}/{t}" for w, t in zip(result["tokens"], result["tags"]))
    )
    for slot in result["slots"]:
        lines.append(f"  {slot['type']} = {slot['value']}")
    if result["intent"] is not None:
        lines.append(
            f"  intent: {result['intent']} ({result['intent_probability']:.3f})"
        )
    return "\n".join(lines)


def is_text_source(source):
    """True when `source` holds a slot tagger (read from its metadata)."""
    import json

    if _is_tflite(source):
        return False  # a TFLite tagger takes token ids: not raw text
    if _saved_model_dir(source) is not None:
        meta = os.path.join(
            _saved_model_dir(source), "assets", "kerascnn_metadata.json"
        )
        if not os.path.isfile(meta):
            return True  # predict_sentences is checked when loading
        with open(meta) as f:
            return tasks.takes(json.load(f).get("task"), "text")
    if not _is_keras(source):
        return False  # predict_files says what a model source may be
    _, meta_path = resolve_model_path(source)
    if meta_path is None:
        return False
    with open(meta_path) as f:
        try:
            return tasks.takes(json.load(f).get("task"), "text")
        except ValueError:
            raise KerasCNNError(
                f"{meta_path} is not valid JSON ({METADATA_FILENAME})."
            ) from None
