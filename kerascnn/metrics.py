"""Sequence-tagging metrics that Keras does not ship.

* `conll_spans` / `conll_f1`: span-level precision, recall and F1 with the
  semantics of the CoNLL-2000 `conlleval` script: a span counts only when
  its type and both boundaries match; ill-formed IOB (an `I-` tag after `O`
  or after a different type) starts a new span, as conlleval does.
* `tagging_report` / `intent_report`: the slot tagger's test report (span
  P/R/F1, per-slot-type F1, token accuracy; intent accuracy and sentence
  exact match). Gold tags are scored as the strings in the data file, so a
  gold span of a type never seen in training still counts as expected.

Image classifiers' accuracy, per-class accuracy and confusion matrix:
`kerascnn.evaluation.classification_report`.
"""


def _split_tag(tag):
    if tag in ("O", "", None):
        return "O", ""
    prefix, _, kind = tag.partition("-")
    if not kind:  # a bare type without prefix counts as I-type
        return "I", prefix
    return prefix, kind


def _ends(prev_prefix, prefix, prev_kind, kind):
    if prev_prefix in ("B", "I", "E", "S") and prefix in ("B", "O", "S"):
        return True
    if prev_prefix in ("E", "S") and prefix in ("I", "E"):
        return True
    return prev_prefix != "O" and prev_kind != kind


def _starts(prev_prefix, prefix, prev_kind, kind):
    if prefix in ("B", "S"):
        return True
    if prev_prefix in ("E", "S", "O") and prefix in ("I", "E"):
        return True
    return prefix != "O" and prev_kind != kind


def conll_spans(tags):
    """Returns the set of `(start, end, type)` spans of one tag sequence."""
    spans = set()
    prev_prefix, prev_kind, start = "O", "", None
    for i, tag in enumerate([*tags, "O"]):
        prefix, kind = _split_tag(tag)
        if start is not None and _ends(prev_prefix, prefix, prev_kind, kind):
            spans.add((start, i - 1, prev_kind))
            start = None
        if prefix != "O" and _starts(prev_prefix, prefix, prev_kind, kind):
            start = i
        prev_prefix, prev_kind = prefix, kind
    return spans


def _prf(correct, found, expected):
    precision = correct / found if found else 0.0
    recall = correct / expected if expected else 0.0
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision + recall
        else 0.0
    )
    return precision, recall, f1


def conll_f1(true_sequences, pred_sequences):
    """Span precision, recall and F1 (fractions) over aligned sequences."""
    correct = found = expected = 0
    for true, pred in zip(true_sequences, pred_sequences, strict=True):
        if len(true) != len(pred):
            raise ValueError(
                "Tag sequences must align token for token. Received lengths "
                f"{len(true)} and {len(pred)}."
            )
        t, p = conll_spans(true), conll_spans(pred)
        correct += len(t & p)
        found += len(p)
        expected += len(t)
    precision, recall, f1 = _prf(correct, found, expected)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "correct": correct,
        "found": found,
        "expected": expected,
    }


def per_type_f1(true_sequences, pred_sequences):
    """`{type: {"precision", "recall", "f1", "support"}}`, sorted by type."""
    counts = {}
    for true, pred in zip(true_sequences, pred_sequences, strict=True):
        t, p = conll_spans(true), conll_spans(pred)
        for spans, slot in ((t & p, 0), (p, 1), (t, 2)):
            for _, _, kind in spans:
                counts.setdefault(kind, [0, 0, 0])[slot] += 1
    report = {}
    for kind in sorted(counts):
        correct, found, expected = counts[kind]
        precision, recall, f1 = _prf(correct, found, expected)
        report[kind] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": expected,
        }
    return report


def tagging_report(true_sequences, pred_sequences):
    """Span P/R/F1, per-type F1 and token accuracy of tag-string lists."""
    spans = conll_f1(true_sequences, pred_sequences)
    correct = sum(
        t == p
        for true, pred in zip(true_sequences, pred_sequences)
        for t, p in zip(true, pred)
    )
    total = sum(len(t) for t in true_sequences)
    return {
        "slot_precision": spans["precision"],
        "slot_recall": spans["recall"],
        "slot_f1": spans["f1"],
        "slot_counts": {
            "correct": spans["correct"],
            "found": spans["found"],
            "expected": spans["expected"],
        },
        "per_slot_f1": per_type_f1(true_sequences, pred_sequences),
        "token_accuracy": correct / total if total else 0.0,
        "num_examples": len(true_sequences),
    }


def intent_report(true_intents, pred_intents, true_tags, pred_tags):
    """Intent accuracy and sentence exact match (all tags and intent)."""
    n = len(true_intents)
    intent_ok = [t == p for t, p in zip(true_intents, pred_intents)]
    exact = [
        ok and list(tt) == list(pt)
        for ok, tt, pt in zip(intent_ok, true_tags, pred_tags)
    ]
    return {
        "intent_accuracy": sum(intent_ok) / n if n else 0.0,
        "sentence_accuracy": sum(exact) / n if n else 0.0,
    }
