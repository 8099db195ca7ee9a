"""A sentence tagged by the slot tagger: coloured slot spans and intent.

The sentence is tokenized like the exported `predict_sentences` signature
(lowercased unless the metadata says otherwise, split on whitespace);
unknown words map to id 1. Spans are read from the predicted IOB tags with
conlleval rules (`kerascnn.metrics.conll_spans`), so the picture shows
exactly the spans the F1 score counts.
"""

import dataclasses
import html
import os

import numpy as np

from kerascnn.errors import KerasCNNError
from kerascnn.metrics import conll_spans
from kerascnn.tasks import load_model_and_metadata
from kerascnn.visualize import _figure
from kerascnn.visualize.curves import trained_epochs

WIDTH_PX = 1000
WORD_FONT = 15
LABEL_FONT = 9
LINE_PX = 74
HEADER_PX = 64
PAD_PX = 6
GAP_PX = 10


@dataclasses.dataclass
class TaggedSentence:
    """The tagger's reading of one sentence.

    Attributes:
        words: the tokens as written (before lowercasing).
        tags: one IOB tag per word (`"O"` outside slots).
        spans: `[(start, end, slot type)]`, `end` inclusive.
        intent: the predicted intent, or `None` without an intent head.
        intent_probability: its probability, or `None`.
        unknown: indices of words outside the vocabulary.
    """

    words: list
    tags: list
    spans: list
    intent: str = None
    intent_probability: float = None
    unknown: list = dataclasses.field(default_factory=list)


def _tag_name(names, index):
    name = names[int(index)] if int(index) < len(names) else "O"
    return "O" if name.startswith("<") else name


def tag_sentence(model, meta, sentence):
    """Runs the tagger on one sentence and returns a `TaggedSentence`."""

    words = str(sentence).split()
    if not words:
        raise KerasCNNError("tags needs a sentence with at least one word.")
    lowercase = bool((meta.preprocessing or {}).get("lowercase", True))
    index = {w: i for i, w in enumerate(meta.vocab)}
    ids = [index.get(w.lower() if lowercase else w, 1) for w in words]
    out = model(np.array([ids], np.int32), training=False)
    tag_probs = np.asarray(out["tags"] if isinstance(out, dict) else out)[0]
    tags = [_tag_name(meta.class_names, t) for t in tag_probs.argmax(-1)]
    result = TaggedSentence(
        words=words,
        tags=tags,
        spans=sorted(conll_spans(tags)),
        unknown=[i for i, t in enumerate(ids) if t == 1],
    )
    if isinstance(out, dict) and "intent" in out and meta.intent_names:
        probs = np.asarray(out["intent"])[0]
        best = int(probs.argmax())
        result.intent = meta.intent_names[best]
        result.intent_probability = float(probs[best])
    return result


# Light qualitative colours (matplotlib's tab10, lightened): distinct
# within one sentence, which is what a reader compares.
PALETTE = (
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#dbdb8d",
    "#9edae5",
    "#c7c7c7",
)


def slot_colour(slot, slots=()):
    """The colour of `slot` among the sorted slot types of a sentence."""
    ordered = sorted(set(slots) | {slot})
    return PALETTE[ordered.index(slot) % len(PALETTE)]


def _segments(result):
    """`[(text, slot or None)]`: each span one segment, other words alone."""
    starts = {start: (end, kind) for start, end, kind in result.spans}
    segments, i = [], 0
    while i < len(result.words):
        if i in starts:
            end, kind = starts[i]
            segments.append((" ".join(result.words[i : end + 1]), kind))
            i = end + 1
        else:
            segments.append((result.words[i], None))
            i += 1
    return segments


def _intent_line(result):
    if result.intent is None:
        return "intent: (the model has no intent head)"
    return f"intent: {result.intent} ({result.intent_probability:.1%})"


def _measure(texts_and_sizes):
    """Pixel widths of texts, measured with the Agg renderer."""
    fig = _figure.new_figure(WIDTH_PX, 100)
    renderer = fig.canvas.get_renderer()
    widths = []
    for text, size in texts_and_sizes:
        artist = fig.text(0, 0, text, fontsize=size)
        widths.append(artist.get_window_extent(renderer).width)
    return widths


def _layout(segments):
    """`[(line, x, width)]` per segment, wrapping at the figure width."""
    words = _measure([(t, WORD_FONT) for t, _ in segments])
    labels = _measure([(k or "", LABEL_FONT) for _, k in segments])
    placed, line, x = [], 0, GAP_PX
    for word_w, label_w in zip(words, labels):
        width = max(word_w, label_w) + 2 * PAD_PX
        if x + width > WIDTH_PX - GAP_PX and x > GAP_PX:
            line, x = line + 1, GAP_PX
        placed.append((line, x, width))
        x += width + GAP_PX
    return placed


def tags_figure(result, title):
    """The sentence with a coloured, labelled box per slot span."""
    from matplotlib.patches import FancyBboxPatch

    segments = _segments(result)
    slots = [kind for _, _, kind in result.spans]
    placed = _layout(segments)
    lines = placed[-1][0] + 1 if placed else 1
    height = HEADER_PX + lines * LINE_PX + 10
    fig = _figure.new_figure(WIDTH_PX, height)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, WIDTH_PX)
    ax.set_ylim(height, 0)
    ax.set_axis_off()
    ax.text(GAP_PX, 22, title, fontsize=11, va="center")
    ax.text(
        GAP_PX,
        48,
        _intent_line(result),
        fontsize=11,
        va="center",
        fontweight="bold",
    )
    for (text, slot), (line, x, width) in zip(segments, placed):
        top = HEADER_PX + line * LINE_PX
        if slot:
            ax.add_patch(
                FancyBboxPatch(
                    (x, top + 6),
                    width,
                    LINE_PX - 18,
                    boxstyle="round,pad=0,rounding_size=6",
                    facecolor=slot_colour(slot, slots),
                    edgecolor="#555555",
                    linewidth=0.8,
                )
            )
            ax.text(
                x + width / 2,
                top + LINE_PX - 20,
                slot,
                fontsize=LABEL_FONT,
                ha="center",
                va="center",
                color="#222222",
            )
        ax.text(
            x + width / 2,
            top + 26,
            text,
            fontsize=WORD_FONT,
            ha="center",
            va="center",
        )
    return fig


def tags_html(result, title):
    """The same picture as a standalone HTML page."""
    parts = []
    slots = [kind for _, _, kind in result.spans]
    for text, slot in _segments(result):
        if slot:
            parts.append(
                f'<span class="slot" style="background:'
                f'{slot_colour(slot, slots)}">{html.escape(text)}'
                f"<small>{html.escape(slot)}</small></span>"
            )
        else:
            parts.append(f'<span class="word">{html.escape(text)}</span>')
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:2em}"
        ".slot,.word{display:inline-block;text-align:center;margin:4px;"
        "padding:6px 8px;border-radius:6px;font-size:18px;"
        "vertical-align:top}"
        ".slot{border:1px solid #555}"
        ".slot small{display:block;font-size:11px;color:#222}"
        "</style></head><body>\n"
        f"<h3>{html.escape(title)}</h3>\n"
        f"<p><b>{html.escape(_intent_line(result))}</b></p>\n"
        f"<p>{''.join(parts)}</p>\n</body></html>\n"
    )


def draw_tags(source, sentence, out=None, as_html=False):
    """Writes a tagged sentence as a PNG (or an HTML page with `as_html`)."""

    model, meta = load_model_and_metadata(source)
    _figure.require_picture(meta, "tags", "tags draws the slot tagger's output")
    if len(meta.vocab) < 2:
        raise KerasCNNError(
            f"{source!r} has no vocabulary in its metadata; tags needs a "
            "run directory written by `kerascnn fit slot_tagger`."
        )
    result = tag_sentence(model, meta, sentence)
    run = os.path.basename(os.path.normpath(source))
    title = f"Slots found by {meta.model} ({run})"
    if as_html:
        path = out or _figure.default_out(source, "tags", "html")
        with open(path, "w", encoding="utf-8") as f:
            f.write(tags_html(result, title))
        return path
    fig = tags_figure(result, title)
    return _figure.finish(fig, source, "tags", out, trained_epochs(source))
