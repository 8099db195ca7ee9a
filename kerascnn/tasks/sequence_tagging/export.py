"""What the slot tagger's exports look like (`SequenceTagging`'s export
hooks), built on the generic `kerascnn.export` modules.

SavedModel (`add_signatures`)
    `serving_default`   `token_ids`: int32 `(batch, length)`, 0 = padding
                        -> `tag_probabilities`, `tag_ids` (BIO-constrained
                        Viterbi in-graph), `tags` strings (`""` at
                        padding) and, with an intent head,
                        `intent_probabilities`, `intent_ids`, `intent`.
    `predict_sentences` `sentences`: string `(batch,)`, whitespace-split,
                        normalized and looked up in-graph; the same
                        outputs plus `tokens` and `lengths`.
ONNX / OpenVINO (`token_ids_spec`, `named_outputs`)
    `token_ids` -> `tag_probabilities`, `tag_ids` (and
    `intent_probabilities`, `intent_ids`).
TFLite: the fixed-length model of `kerascnn.tasks.sequence_tagging.tflite`.

Verification reads real ATIS test sentences (`load_examples`): Keras and
the artifact are both decoded with the BIO-constrained Viterbi and scored
against the file's gold tag strings (`scores`: span F1 and token
accuracy); other data sets' token-id arrays by token accuracy.
"""

import dataclasses

from kerascnn import metrics
from kerascnn.data import text
from kerascnn.errors import ExportError
from kerascnn.export import examples as _examples
from kerascnn.export import named_io as _named_io
from kerascnn.export import saved_model as _saved_model
from kerascnn.export import verify as _verify
from kerascnn.lazy import LazyModule
from kerascnn.tasks.sequence_tagging import graph, tagging

np = LazyModule("numpy")
tf = LazyModule("tensorflow")

UNKNOWN_TOKEN_ID = 1
PADDING_TOKEN_ID = 0
SYNTHETIC_LENGTH = 16

# === SavedModel signatures ===


def named_outputs(outputs, token_ids, tag_names=()):
    """`tag_probabilities`, `tag_ids` and, with an intent head,
    `intent_probabilities` and `intent_ids` (the ONNX / OpenVINO outputs).

    `tag_names` (the tagger's class names) choose the decoding of
    `tag_ids`: BIO-constrained Viterbi for IOB2 tags, else argmax.
    """

    if not isinstance(outputs, dict):
        outputs = {"tags": outputs}
    tag_probabilities = tf.cast(outputs["tags"], tf.float32)
    named = {
        "tag_probabilities": tag_probabilities,
        "tag_ids": graph.decode_tag_ids(
            tag_probabilities, token_ids, tag_names
        ),
    }
    if "intent" in outputs:
        intent = tf.cast(outputs["intent"], tf.float32)
        named["intent_probabilities"] = intent
        named["intent_ids"] = _named_io.argmax_ids(intent)
    return named


def token_ids_spec():
    """`token_ids`: int32 `(batch, length)`, 0 = padding."""

    return tf.TensorSpec((None, None), tf.int32, name="token_ids")


def _signature_outputs(model, meta, token_ids):
    """`named_outputs` plus `tags` (`""` at padding) and `intent`
    strings."""

    names = [str(n) for n in _saved_model.class_names(model, meta)]
    outputs = model(token_ids, training=False)
    result = named_outputs(outputs, token_ids, names)
    result["tags"] = tf.where(
        tf.not_equal(token_ids, PADDING_TOKEN_ID),
        tf.gather(tf.constant(names), result["tag_ids"]),
        tf.constant(""),
    )
    if "intent_ids" in result:
        intents = list(meta.intent_names) or [
            str(i) for i in range(int(result["intent_probabilities"].shape[-1]))
        ]
        result["intent"] = tf.gather(tf.constant(intents), result["intent_ids"])
    return result


def make_vocab_table(vocab):
    """A static word -> id table; unknown words map to id 1."""

    if len(vocab) < 2:
        raise ExportError(
            "Exporting the tagger needs its vocabulary in the metadata "
            "(`vocab`, index = token id, 0 = padding, 1 = unknown)."
        )
    words = [str(w) for w in vocab[2:]]
    initializer = tf.lookup.KeyValueTensorInitializer(
        tf.constant(words, tf.string),
        tf.range(2, len(vocab), dtype=tf.int64),
    )
    return tf.lookup.StaticHashTable(initializer, UNKNOWN_TOKEN_ID)


def tokenize(sentences, lowercase=True):
    """Whitespace split (lowercased, as the ATIS data is); ragged words."""

    if lowercase:
        sentences = tf.strings.lower(sentences)
    return tf.strings.split(tf.strings.strip(sentences))


def add_signatures(archive, model, meta):
    """`serving_default` (`token_ids`) and `predict_sentences`."""

    table = make_vocab_table(meta.vocab)
    archive.track(table)

    archive.add_endpoint(
        "serving_default",
        lambda token_ids: _signature_outputs(model, meta, token_ids),
        input_signature=[token_ids_spec()],
    )

    digits = text.uses_digit_shapes(meta.vocab)

    def predict_sentences(sentences):
        words = tokenize(sentences, lowercase=False)
        normalized = tf.ragged.map_flat_values(
            graph.normalize_words, words, digits
        )
        ids = tf.ragged.map_flat_values(table.lookup, normalized)
        token_ids = tf.cast(ids.to_tensor(PADDING_TOKEN_ID), tf.int32)
        result = _signature_outputs(model, meta, token_ids)
        result["tokens"] = words.to_tensor("")
        result["lengths"] = words.row_lengths()
        return result

    archive.add_endpoint(
        "predict_sentences",
        predict_sentences,
        input_signature=[tf.TensorSpec((None,), tf.string, name="sentences")],
    )


# === Verification: examples, outputs compared, scores ===


@dataclasses.dataclass
class TaggerGold:
    """Gold labels of tagger examples: tag strings and tag names."""

    tags: list
    tag_names: list

    def __len__(self):
        return len(self.tags)

    def __getitem__(self, index):
        return TaggerGold(self.tags[index], self.tag_names)


def load_examples(meta, split="test", limit=500, data_dir=None):
    """`(token ids (N, T), TaggerGold)` of real ATIS sentences.

    Words get the training normalisation; gold tags stay the strings of
    the file (a tag never seen in training still counts as a gold span).

    Raises:
        ExportError: the ATIS split cannot be read (the message says why).
    """
    try:
        utterances, _ = tagging.load_atis_split(split, data_dir, limit)
    except Exception as e:  # DataError, missing files
        raise _examples.unreadable(meta, split, e) from None
    if not utterances:
        raise ExportError(f"The {split} split of {meta.dataset!r} is empty.")
    vocab = text.Vocabulary(meta.vocab)
    digits = text.uses_digit_shapes(meta.vocab)
    rows = [
        vocab.encode(
            text.normalize_words(u.words)
            if digits
            else [w.lower() for w in u.words]
        )
        for u in utterances
    ]
    x = np.zeros((len(rows), max(len(r) for r in rows)), np.int32)
    for i, r in enumerate(rows):
        x[i, : len(r)] = r
    gold = TaggerGold([list(u.tags) for u in utterances], meta.class_names)
    return x, gold


def random_token_ids(meta, count):
    """Random token-id sentences of `SYNTHETIC_LENGTH` words."""
    rng = np.random.default_rng(0)
    vocab = max(len(meta.vocab), 3)
    shape = (count, SYNTHETIC_LENGTH)
    return rng.integers(1, vocab, size=shape).astype(np.int32)


def compared_outputs(outputs):
    """`(tag probabilities, intent probabilities or None)` of the slot
    tagger in any runtime (Keras and TFLite name them `tags`/`intent`,
    SavedModel, ONNX and OpenVINO `tag_probabilities`/
    `intent_probabilities`; the SavedModel's `tags`/`intent` are strings)."""
    if not isinstance(outputs, dict):
        return np.asarray(outputs), None
    main = outputs.get("tag_probabilities", outputs.get("tags"))
    intent = outputs.get("intent_probabilities", outputs.get("intent"))
    if intent is not None and np.asarray(intent).dtype.kind in "SUO":
        intent = None  # the SavedModel's intent name strings
    return np.asarray(main), None if intent is None else np.asarray(intent)


def token_accuracy(probabilities, labels, token_ids):
    """Top-1 accuracy over the real (non-padding) tokens."""
    pred = np.argmax(probabilities, axis=-1)
    labels = np.asarray(labels)
    n = min(pred.shape[1], labels.shape[1])
    mask = _verify.padding_mask(token_ids)[:, :n]
    hits = (pred[:, :n] == labels[:, :n]) & mask
    return float(hits.sum() / max(mask.sum(), 1))


def scores(probabilities, gold, token_ids):
    """`{"accuracy": token accuracy, "slot_f1": span F1}` of
    constrained-decoded tags vs gold tag strings (a `TaggerGold`); token
    accuracy alone against tag-id arrays."""
    if not isinstance(gold, TaggerGold):
        return {"accuracy": token_accuracy(probabilities, gold, token_ids)}
    lengths = [
        min(len(g), int(n))
        for g, n in zip(gold.tags, (np.asarray(token_ids) != 0).sum(1))
    ]
    pred = tagging.decode_tags(probabilities, lengths, gold.tag_names)
    true = [g[:n] for g, n in zip(gold.tags, lengths)]
    report = metrics.tagging_report(true, pred)
    return {"accuracy": report["token_accuracy"], "slot_f1": report["slot_f1"]}


# === Warm-up requests ===


def known_token_ids(token_ids, vocab):
    """Ids the model's vocabulary lacks become the unknown id (1).

    Examples read from the data set may use a larger vocabulary than the
    model's own; an out-of-range id would fail the warm-up and, in TF
    Serving, the model's load.
    """
    ids = np.asarray(token_ids)
    if len(vocab):
        ids = np.where(ids < len(vocab), ids, UNKNOWN_TOKEN_ID)
    return ids


def token_sentences(token_ids, vocab):
    """Token ids back to lower-case sentences (padding dropped)."""
    return [
        " ".join(str(vocab[i]) for i in row if i != 0).encode("utf-8")
        for row in known_token_ids(token_ids, vocab)
    ]


def warmup_values(key, kind, x, meta):
    """`token_ids` (int: padded ids the vocabulary knows) and `sentences`
    (string: the ids written back as words) from token ids `x`."""
    if key == "token_ids" and kind == "int":
        return known_token_ids(x, meta.vocab)
    if key == "sentences" and kind == "string":
        return np.array(token_sentences(x, meta.vocab), dtype=object)
    return None


# === Model card ===


def card_input(meta):
    """The "Input" section of a token-id model (the slot tagger)."""
    return {
        "input": "token_ids: int32 (batch, length), 0 = padding",
        "steps": [
            "split the sentence on whitespace",
            "lowercase; each digit -> DIGIT (when the vocabulary has "
            "digit shapes)",
            "look each word up in the vocabulary (metadata `vocab`, "
            "index = id; unknown words -> 1)",
            "pad with 0 to the batch's longest sentence",
        ],
        "vocab_size": len(meta.vocab),
        "note": "the SavedModel's predict_sentences does all of this in-graph",
    }


TOKEN_ID_LIMITATION = (
    "ONNX/OpenVINO/TFLite take token ids (the vocabulary is in the "
    "metadata) and return tag probabilities and BIO-constrained tag ids; "
    "text in, tag strings out is the SavedModel's predict_sentences."
)
