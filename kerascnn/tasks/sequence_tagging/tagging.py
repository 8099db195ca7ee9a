"""Slot-tagger inference: BIO-constrained decoding and evaluation.

* `allowed_transitions` / `viterbi_decode`: the best tag sequence under the
  per-token softmax that is valid IOB2 (an `I-x` only after `B-x` or
  `I-x`); reserved tags (`<pad>`, `<unk>`) are never emitted.
* `TaggerPredictor`: a model wrapper that pads batches of similar length
  and returns tag probabilities and intent probabilities.
* `evaluate_tagger`: the test report (conlleval spans against the gold tag
  strings of the file, per-type F1, token/intent accuracy, exact match).
"""

from kerascnn import metrics
from kerascnn.data import sources, text
from kerascnn.lazy import LazyModule

np = LazyModule("numpy")
tf = LazyModule("tensorflow")

NEG_INF = -1e30


# ======================= Constrained decoding ========================


def _prefix_type(tag):
    if tag.startswith(("B-", "I-")):
        return tag[0], tag[2:]
    return "O", None


def allowed_transitions(tag_names):
    """`(start (K,), transitions (K, K))` boolean masks of valid IOB2.

    `transitions[a, b]` says tag `b` may follow tag `a`. `I-x` may follow
    only `B-x`/`I-x` and may not start a sentence; tags in angle brackets
    (padding, unknown) are never allowed.
    """
    k = len(tag_names)
    parsed = [_prefix_type(str(t)) for t in tag_names]
    reserved = np.array([str(t).startswith("<") for t in tag_names])
    start = np.array([p != "I" for p, _ in parsed]) & ~reserved
    trans = np.ones((k, k), dtype=bool)
    for b, (prefix, kind) in enumerate(parsed):
        if prefix == "I":
            trans[:, b] = [t == kind for _, t in parsed]
    trans[:, reserved] = False
    trans[reserved, :] = False
    return start, trans


def viterbi_decode(probabilities, start, transitions):
    """Best valid path of one sentence's `(T, K)` tag probabilities."""
    log_p = np.log(np.maximum(np.asarray(probabilities, np.float64), 1e-12))
    if not len(log_p):
        return []
    penalty = np.where(transitions, 0.0, NEG_INF)
    score = log_p[0] + np.where(start, 0.0, NEG_INF)
    back = []
    for t in range(1, len(log_p)):
        candidates = score[:, None] + penalty
        back.append(candidates.argmax(axis=0))
        score = candidates.max(axis=0) + log_p[t]
    path = [int(score.argmax())]
    for pointers in reversed(back):
        path.append(int(pointers[path[-1]]))
    return path[::-1]


def decode_tags(probabilities, lengths, tag_names, constrained=True):
    """Tag strings per sentence from `(B, T, K)` probabilities."""
    names = [str(t) for t in tag_names]
    start, trans = allowed_transitions(names)
    out = []
    for row, n in zip(probabilities, lengths):
        row = np.asarray(row[:n])
        if not n:
            out.append([])
            continue
        ids = (
            viterbi_decode(row, start, trans)
            if constrained
            else row.argmax(-1).tolist()
        )
        out.append(["O" if names[i].startswith("<") else names[i] for i in ids])
    return out


# ============================ Prediction =============================


class TaggerPredictor:
    """Runs a tagger on word lists, batching sentences of similar length.

    Args:
        model: the Keras tagger (int ids -> `tags` [, `intent`]).
        vocab: id -> word list (`ModelMetadata.vocab`).
        batch_size: sentences per model call.
    """

    def __init__(self, model, vocab, batch_size=128):

        self.model = model
        self.vocab = text.Vocabulary(vocab)
        self.batch_size = batch_size
        self._call = tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec((None, None), tf.int32)],
        )

    def encode(self, words):
        """Normalised words -> int32 ids (unknown words -> 1)."""
        return self.vocab.encode(words)

    def predict(self, word_lists):
        """`(tag probability arrays (T_i, K), intent probabilities or None)`."""
        ids = [self.encode(w) for w in word_lists]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        tags, intents = [None] * len(ids), [None] * len(ids)
        for lo in range(0, len(order), self.batch_size):
            chunk = order[lo : lo + self.batch_size]
            width = max(1, max(len(ids[i]) for i in chunk))
            x = np.zeros((len(chunk), width), np.int32)
            for row, i in enumerate(chunk):
                x[row, : len(ids[i])] = ids[i]
            out = self._call(x)
            if not isinstance(out, dict):
                out = {"tags": out}
            probs = np.asarray(out["tags"], np.float32)
            intent = out.get("intent")
            for row, i in enumerate(chunk):
                tags[i] = probs[row, : len(ids[i])]
                if intent is not None:
                    intents[i] = np.asarray(intent[row], np.float32)
        return tags, intents


# ============================ Evaluation =============================


def evaluate_tagger(
    model, metadata, utterances, constrained=True, batch_size=128
):
    """Test report of a tagger on `text.Utterance`s (gold strings kept)."""
    predictor = TaggerPredictor(model, metadata.vocab, batch_size)
    words = [text.normalize_words(u.words) for u in utterances]
    if not text.uses_digit_shapes(metadata.vocab):
        words = [[w.lower() for w in u.words] for u in utterances]
    tag_probs, intent_probs = predictor.predict(words)
    pred_tags = decode_tags(
        tag_probs, [len(w) for w in words], metadata.class_names, constrained
    )
    gold_tags = [list(u.tags) for u in utterances]
    report = metrics.tagging_report(gold_tags, pred_tags)
    if intent_probs and intent_probs[0] is not None:
        names = list(metadata.intent_names)
        predicted = [names[int(np.argmax(p))] for p in intent_probs]
        report.update(
            metrics.intent_report(
                [u.intent for u in utterances], predicted, gold_tags, pred_tags
            )
        )
    report["accuracy"] = report["token_accuracy"]  # the generic key
    report["decoding"] = "bio_viterbi" if constrained else "argmax"
    return report


def load_atis_split(split, data_dir=None, limit=None):
    """`(utterances of split, training utterances)` of local/cached ATIS."""
    paths = sources.read("atis", "train", data_dir=data_dir).text_path
    utterances, train, _ = text.split_atis(paths, split)
    if limit is not None:
        utterances = utterances[:limit]
    return utterances, train


def evaluate_atis(
    model, metadata, *, data_dir=None, split="test", limit=None, batch_size=128
):
    """`evaluate_tagger` on an ATIS split read from the `.iob` files."""
    utterances, _ = load_atis_split(split, data_dir, limit)
    return evaluate_tagger(model, metadata, utterances, batch_size=batch_size)
