import numpy as np
import pytest

from kerascnn.metrics import classification_report, conll_f1, conll_spans


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
