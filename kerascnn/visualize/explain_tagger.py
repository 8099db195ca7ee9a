"""Which words made the slot tagger choose its intent and a slot.

Integrated gradients over the embeddings (Sundararajan et al. 2017, their
text experiments): the path runs from all-zero embeddings to the
sentence's, with the padding mask of the real token ids, and each word's
attribution is its embedding difference times the averaged gradient,
summed over the embedding axis. The attributions of a score add up to its
change from the zero-embedding baseline.

    intent   the probability of the intent (predicted or named)
    slot     the summed probability of the predicted tags of the words the
             tagger put in slot NAME (its spans, conlleval rules)

The picture draws the sentence like `tags.png`, each word's box coloured
by its attribution (red for, blue against), one line per score.
"""

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from kerascnn.errors import KerasCNNError
from kerascnn.tasks import load_model_and_metadata
from kerascnn.visualize import _figure
from kerascnn.visualize.curves import trained_epochs
from kerascnn.visualize.tags import _measure, tag_sentence

DEFAULT_STEPS = 50
WORD_FONT = 14
LINE_PX = 92
HEADER_PX = 46
GAP_PX = 8
PAD_PX = 6
WIDTH_PX = 1000


@dataclasses.dataclass
class TokenAttributions:
    """Per-word attributions of the tagger's intent (and a slot).

    Attributes:
        tagged: the `TaggedSentence` (words, tags, spans, intent).
        intent: the explained intent name, or `None` without intent head.
        intent_probability: its probability.
        intent_scores: `(words,)` attributions of that probability.
        slot: the explained slot type, or `None`.
        slot_words: indices of the words in that slot's spans.
        slot_scores: `(words,)` attributions of their tag probabilities.
        completeness: `{score: (sum of attributions, f(x) - f(baseline))}`.
    """

    tagged: object
    intent: str = None
    intent_probability: float = None
    intent_scores: np.ndarray = None
    slot: str = None
    slot_words: list = dataclasses.field(default_factory=list)
    slot_scores: np.ndarray = None
    completeness: dict = dataclasses.field(default_factory=dict)


def _tap_class():

    class EmbeddingTap(keras.layers.Layer):
        """Passes the embeddings through, or `value` when one is set (the
        interpolated embeddings of the path); the mask passes unchanged."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True
            self.value = None

        def call(self, x):
            return x if self.value is None else self.value

    return EmbeddingTap


class _TaggerProbe:
    """The tagger with its embedding output replaceable, sharing weights."""

    def __init__(self, model):

        self.embedding = _embedding_layer(model)
        self.tap = _tap_class()(name="embedding_tap")

        def call(layer, *args, **kwargs):
            out = layer(*args, **kwargs)
            return self.tap(out) if layer is self.embedding else out

        self.model = keras.models.clone_model(
            model, clone_function=lambda layer: layer, call_function=call
        )

    def integrated_gradients(self, ids, score, steps=DEFAULT_STEPS):
        """`(attributions (T,), f(x), f(baseline))` of `score(outputs)` for
        one sentence of token ids `(1, T)`."""

        embedded = self.embedding(ids)
        alphas = tf.linspace(0.0, 1.0, steps + 1)
        path = alphas[:, None, None] * tf.cast(embedded, tf.float32)
        weights = np.full(steps + 1, 1.0 / steps, np.float32)
        weights[[0, -1]] /= 2
        repeated = np.repeat(ids, steps + 1, axis=0)
        try:
            self.tap.value = path
            with tf.GradientTape() as tape:
                tape.watch(path)
                scores = score(self.model(repeated, training=False))
            grads = tape.gradient(scores, path).numpy()
        finally:
            self.tap.value = None
        mean_grad = np.tensordot(weights, grads, axes=1)
        attributions = (np.asarray(embedded)[0] * mean_grad).sum(axis=-1)
        scores = np.asarray(scores)
        return attributions, float(scores[-1]), float(scores[0])


def _embedding_layer(model):

    for layer in model.layers:
        if isinstance(layer, keras.layers.Embedding):
            return layer
    raise KerasCNNError(
        f"{model.name!r} has no Embedding layer to attribute through."
    )


def _token_ids(meta, words):
    lowercase = bool((meta.preprocessing or {}).get("lowercase", True))
    index = {w: i for i, w in enumerate(meta.vocab)}
    return np.array(
        [[index.get(w.lower() if lowercase else w, 1) for w in words]],
        np.int32,
    )


def _intent_index(meta, intent, predicted):
    names = list(meta.intent_names)
    if intent is None:
        return names.index(predicted)
    if intent not in names:
        raise KerasCNNError(
            f"{meta.model!r} has no intent {intent!r}; its intents: "
            f"{', '.join(names)}."
        )
    return names.index(intent)


def _slot_words(tagged, slot):
    words = [
        i
        for start, end, kind in tagged.spans
        if kind == slot
        for i in range(start, end + 1)
    ]
    if not words:
        found = sorted({kind for _, _, kind in tagged.spans})
        raise KerasCNNError(
            f"The tagger found no {slot!r} slot in this sentence; slots "
            f"found: {', '.join(found) or 'none'}."
        )
    return words


def token_attributions(
    model, meta, sentence, intent=None, slot=None, steps=DEFAULT_STEPS
):
    """`TokenAttributions` of one sentence through the slot tagger."""

    tagged = tag_sentence(model, meta, sentence)
    ids = _token_ids(meta, tagged.words)
    probe = _TaggerProbe(model)
    result = TokenAttributions(tagged=tagged)
    if tagged.intent is not None:
        k = _intent_index(meta, intent, tagged.intent)
        scores, at_x, at_base = probe.integrated_gradients(
            ids, lambda out: out["intent"][:, k], steps
        )
        result.intent = meta.intent_names[k]
        result.intent_probability = at_x
        result.intent_scores = scores
        result.completeness["intent"] = (float(scores.sum()), at_x - at_base)
    elif intent is not None:
        raise KerasCNNError(f"{meta.model!r} has no intent head.")
    if slot is not None:
        words = _slot_words(tagged, slot)
        names = [str(n) for n in meta.class_names]
        tag_ids = [names.index(tagged.tags[i]) for i in words]

        def slot_score(out):
            tags = out["tags"] if isinstance(out, dict) else out
            picked = tf.gather(tags, words, axis=1)  # (N, words, classes)
            chosen = tf.gather(picked, tag_ids, axis=2, batch_dims=0)
            return tf.reduce_sum(tf.linalg.diag_part(chosen), axis=-1)

        scores, at_x, at_base = probe.integrated_gradients(
            ids, slot_score, steps
        )
        result.slot, result.slot_words, result.slot_scores = slot, words, scores
        result.completeness["slot"] = (float(scores.sum()), at_x - at_base)
    return result


# === The picture ===


def _colour(value, peak):
    """Red for positive, blue for negative, white at zero."""
    from matplotlib import cm

    if peak <= 0:
        return "#ffffff"
    # 0.35 keeps the darkest boxes light enough for black text.
    return cm.RdBu_r(0.5 + 0.35 * float(np.clip(value / peak, -1, 1)))


def _line(ax, words, widths, scores, top, label, marked=()):
    from matplotlib.patches import FancyBboxPatch

    ax.text(GAP_PX, top + 8, label, fontsize=10, fontweight="bold")
    peak = float(np.abs(scores).max())
    x = GAP_PX
    for i, (word, width) in enumerate(zip(words, widths)):
        if x + width > WIDTH_PX - GAP_PX:
            break  # sentences longer than a line are cut, as said below
        ax.add_patch(
            FancyBboxPatch(
                (x, top + 20), width, 44,
                boxstyle="round,pad=0,rounding_size=6",
                facecolor=_colour(scores[i], peak),
                edgecolor="#222222" if i in marked else "#999999",
                linewidth=2.0 if i in marked else 0.8,
            )
        )  # fmt: skip
        ax.text(x + width / 2, top + 36, word, fontsize=WORD_FONT,
                ha="center", va="center")  # fmt: skip
        ax.text(x + width / 2, top + 56, f"{scores[i]:+.2f}", fontsize=8,
                ha="center", va="center", color="#333333")  # fmt: skip
        x += width + GAP_PX


def token_attributions_figure(result, title):
    """The sentence once per explained score, words coloured by
    attribution; the slot's own words get a dark border."""

    words = result.tagged.words
    widths = [w + 2 * PAD_PX for w in _measure([(t, WORD_FONT) for t in words])]
    lines = []
    if result.intent_scores is not None:
        lines.append(
            (
                result.intent_scores,
                f"intent {result.intent} "
                f"({result.intent_probability:.1%}): integrated gradients",
                (),
            )
        )
    if result.slot_scores is not None:
        lines.append(
            (
                result.slot_scores,
                f"slot {result.slot} (words "
                f"{', '.join(words[i] for i in result.slot_words)})",
                result.slot_words,
            )
        )
    height = HEADER_PX + max(len(lines), 1) * LINE_PX
    fig = _figure.new_figure(WIDTH_PX, height)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, WIDTH_PX)
    ax.set_ylim(height, 0)
    ax.set_axis_off()
    ax.text(GAP_PX, 20, title, fontsize=11, va="center")
    for i, (scores, label, marked) in enumerate(lines):
        _line(ax, words, widths, scores, HEADER_PX + i * LINE_PX, label,
              marked)  # fmt: skip
    return fig


def draw_token_attributions(source, sentence, intent=None, slot=None, out=None):
    """Writes the tagger's token attributions for `sentence` as a PNG."""

    model, meta = load_model_and_metadata(source)
    _figure.require_picture(
        meta, "explain", "token attributions explain the slot tagger"
    )
    if len(meta.vocab) < 2:
        raise KerasCNNError(
            f"{source!r} has no vocabulary in its metadata; explain needs a "
            "run directory written by `kerascnn fit slot_tagger`."
        )
    result = token_attributions(model, meta, sentence, intent, slot)
    if result.intent_scores is None and result.slot_scores is None:
        raise KerasCNNError(
            "This tagger has no intent head: name a slot to explain with "
            "--slot."
        )
    run = os.path.basename(os.path.normpath(source))
    title = f"Which words {meta.model} ({run}) used"
    fig = token_attributions_figure(result, title)
    path = out or _figure.default_out(source, "explain_tokens")
    epochs = trained_epochs(source) if os.path.isdir(source) else 0
    return _figure.finish(fig, source, "explain_tokens", path, epochs)
