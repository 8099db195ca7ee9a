import numpy as np
import pytest

from kerascnn.evaluation import classification_report
from kerascnn.metrics import conll_f1, conll_spans


def test_spans_of_well_formed_iob2():
    tags = ["O", "B-from", "I-from", "O", "B-to", "B-to", "I-to"]
    assert conll_spans(tags) == {(1, 2, "from"), (4, 4, "to"), (5, 6, "to")}


def test_ill_formed_i_starts_a_span_like_conlleval():
    assert conll_spans(["I-a", "I-a", "O", "I-b"]) == {(0, 1, "a"), (3, 3, "b")}
    # A type change inside I- tags closes one span and opens another.
    assert conll_spans(["B-a", "I-b"]) == {(0, 0, "a"), (1, 1, "b")}


def test_f1_counts_exact_boundaries_only():
    gold = [["B-x", "I-x", "O", "B-y"]]
    pred = [["B-x", "O", "O", "B-y"]]  # x truncated: wrong
    scores = conll_f1(gold, pred)
    assert scores["correct"] == 1 and scores["found"] == 2
    assert scores["expected"] == 2
    assert scores["f1"] == pytest.approx(0.5)


def test_f1_rejects_misaligned_sequences():
    with pytest.raises(ValueError, match="align"):
        conll_f1([["O", "O"]], [["O"]])


def test_classification_report():
    report = classification_report([0, 0, 1, 2], [0, 1, 1, 2], ["a", "b", "c"])
    assert report["accuracy"] == 0.75
    assert report["per_class_accuracy"] == {"a": 0.5, "b": 1.0, "c": 1.0}
    assert np.array(report["confusion_matrix"]).tolist() == [
        [1, 1, 0],
        [0, 1, 0],
        [0, 0, 1],
    ]


# === conlleval on hand-worked cases (exact counts) ===

PEER_CONLLEVAL = "/work/shared/peers/conlleval.py"


def test_conll_perfect_prediction():
    gold = [["O", "B-from", "I-from", "O", "B-to"]]
    s = conll_f1(gold, gold)
    assert (s["correct"], s["found"], s["expected"]) == (2, 2, 2)
    assert s["f1"] == 1.0


def test_conll_boundary_error_counts_as_wrong():
    gold = [["B-to", "I-to", "O"]]
    pred = [["B-to", "O", "O"]]
    s = conll_f1(gold, pred)
    assert (s["correct"], s["found"], s["expected"]) == (0, 1, 1)
    assert s["f1"] == 0.0


def test_conll_stray_i_opens_a_span():
    gold = [["O", "B-to", "I-to", "O", "B-day"]]
    # A stray I-to after O opens a span with the right boundaries (correct);
    # I-day after B-to starts a new day span (wrong: gold has no such span).
    pred = [["O", "I-to", "I-to", "I-day", "B-day"]]
    s = conll_f1(gold, pred)
    assert (s["correct"], s["found"], s["expected"]) == (2, 3, 2)
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == 1.0
    assert s["f1"] == pytest.approx(0.8)


def test_conll_unseen_gold_tag_counts_as_expected_span():
    # B-new never occurs in training: the model cannot predict it, and the
    # gold span must still count (recall 1/2), not be scored as O.
    gold = [["B-new", "I-new", "O", "B-to"]]
    pred = [["O", "O", "O", "B-to"]]
    s = conll_f1(gold, pred)
    assert (s["correct"], s["found"], s["expected"]) == (1, 1, 2)
    assert s["precision"] == 1.0
    assert s["recall"] == 0.5
    assert s["f1"] == pytest.approx(2 / 3)


def test_conll_empty_prediction():
    gold = [["B-a", "O"], ["B-b", "I-b"]]
    pred = [["O", "O"], ["O", "O"]]
    s = conll_f1(gold, pred)
    assert (s["correct"], s["found"], s["expected"]) == (0, 0, 2)
    assert (s["precision"], s["recall"], s["f1"]) == (0.0, 0.0, 0.0)


def _load_peer_conlleval():
    import importlib.util
    import os

    if not os.path.isfile(PEER_CONLLEVAL):
        pytest.skip("peer conlleval.py not available")
    spec = importlib.util.spec_from_file_location("peer", PEER_CONLLEVAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_conll_matches_reference_on_random_ill_formed_sequences():
    peer = _load_peer_conlleval()
    rng = np.random.default_rng(0)
    tags = ["O", "B-a", "I-a", "B-b", "I-b"]
    gold, pred = [], []
    for _ in range(300):
        n = int(rng.integers(1, 12))
        gold.append([tags[i] for i in rng.integers(0, 5, n)])
        pred.append([tags[i] for i in rng.integers(0, 5, n)])
    ours, ref = conll_f1(gold, pred), peer.span_prf(gold, pred)
    assert ours["correct"] == ref["correct"]
    assert ours["found"] == ref["pred_chunks"]
    assert ours["expected"] == ref["gold_chunks"]
    assert ours["f1"] == pytest.approx(ref["f1"])


def test_tagging_report_per_type_and_exact_match():
    from kerascnn.metrics import intent_report, tagging_report

    gold = [["B-to", "I-to", "O"], ["B-from", "O", "B-to"]]
    pred = [["B-to", "I-to", "O"], ["B-from", "O", "O"]]
    report = tagging_report(gold, pred)
    assert report["per_slot_f1"]["from"]["f1"] == 1.0
    assert report["per_slot_f1"]["to"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert report["token_accuracy"] == pytest.approx(5 / 6)
    intents = intent_report(["a", "b"], ["a", "a"], gold, pred)
    assert intents == {"intent_accuracy": 0.5, "sentence_accuracy": 0.5}
    # Right intent but one wrong tag: not an exact match.
    assert intent_report(["a", "b"], ["a", "b"], gold, pred) == {
        "intent_accuracy": 1.0,
        "sentence_accuracy": 0.5,
    }
