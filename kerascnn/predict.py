"""Classify image files with a trained model: `predict_files`.

Files are decoded with `tf.io.decode_image` (PNG, JPEG, GIF, BMP), then
converted to the model's channels and size and normalized exactly as the
training data was (`kerascnn.data.preprocess_images` with the run's
`preprocessing` metadata).
"""

import os

import numpy as np

from kerascnn import tasks
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
    tasks.require(meta, inputs="images", what="predict classifies images")
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


# ============================ Slot tagger ============================

DEFAULT_MAX_WORDS = 200


def group_slots(tokens, tags):
    """IOB2 tags -> `[{"type", "value", "start", "end"}]` (end exclusive).

    Spans follow conlleval: an `I-x` that does not continue an `x` span
    opens one. `value` joins the tokens as typed.
    """
    from kerascnn.metrics import conll_spans

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
    from kerascnn.data import text

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
    if _is_saved_model(source):
        return _tag_with_saved_model(source, utterances, max_words)
    return _tag_with_keras(source, utterances, max_words)


def _is_saved_model(source):
    return os.path.isdir(source) and os.path.isfile(
        os.path.join(source, "saved_model.pb")
    )


def _tag_with_keras(source, utterances, max_words):
    from kerascnn import tagging
    from kerascnn.data import text
    from kerascnn.metadata import load_model_and_metadata

    model, meta = load_model_and_metadata(source)
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
        inputs="text",
        what="raw-text prediction needs the slot tagger (pass image files "
        "instead)",
    )
    if len(meta.vocab or []) < 2:
        raise KerasCNNError(
            "The tagger's metadata has no vocabulary; cannot map words to ids."
        )


def _tag_with_saved_model(path, utterances, max_words):
    import tensorflow as tf

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

    from kerascnn.metadata import METADATA_FILENAME, resolve_model_path

    if _is_saved_model(source):
        meta = os.path.join(source, "assets", "kerascnn_metadata.json")
        if not os.path.isfile(meta):
            return True  # predict_sentences is checked when loading
        with open(meta) as f:
            return _takes_text(json.load(f).get("task"))
    _, meta_path = resolve_model_path(source)
    if meta_path is None:
        return False
    with open(meta_path) as f:
        try:
            return _takes_text(json.load(f).get("task"))
        except ValueError:
            raise KerasCNNError(
                f"{meta_path} is not valid JSON ({METADATA_FILENAME})."
            ) from None


def _takes_text(task_name):
    return task_name in tasks.task_names() and (
        tasks.get_task(task_name).inputs == "text"
    )
