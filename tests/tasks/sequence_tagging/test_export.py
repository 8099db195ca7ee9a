"""The slot tagger's export pieces that need no trained model: warm-up
inputs and verification scores (`kerascnn.tasks.sequence_tagging.export`).
"""

import numpy as np

from kerascnn import tasks
from kerascnn.metadata import ModelMetadata
from kerascnn.tasks.sequence_tagging import export

TAGS = ["<pad>", "O", "B-city", "I-city"]
VOCAB = ["<pad>", "<unk>", "to", "new", "york"]


def _meta():
    return ModelMetadata(
        model="slot_tagger",
        task="sequence_tagging",
        class_names=TAGS,
        vocab=VOCAB,
    )


def test_warmup_inputs_keep_to_the_model_s_vocabulary():
    x = np.array([[2, 3, 4, 0], [2, 9, 0, 0]], np.int32)  # 9: unknown
    ids = export.warmup_values("token_ids", "int", x, _meta())
    np.testing.assert_array_equal(ids, [[2, 3, 4, 0], [2, 1, 0, 0]])
    sentences = export.warmup_values("sentences", "string", x, _meta())
    assert sentences.tolist() == [b"to new york", b"to <unk>"]
    assert export.warmup_values("images", "float", x, _meta()) is None
    # The task answers through the same hook the exporter asks.
    task = tasks.SEQUENCE_TAGGING
    assert task.warmup_values("sentences", "string", x, _meta())[0] == (
        b"to new york"
    )


def _probabilities(paths, k=len(TAGS)):
    """One-hot `(N, T, K)` probabilities of tag-id paths (softened)."""
    probs = np.full((len(paths), len(paths[0]), k), 0.01, np.float32)
    for row, path in enumerate(paths):
        for t, tag in enumerate(path):
            probs[row, t, tag] = 0.97
    return probs


def test_scores_decode_with_bio_constraints_against_gold_strings():
    token_ids = np.array([[2, 3, 4], [2, 3, 0]], np.int32)
    gold = export.TaggerGold([["O", "B-city", "I-city"], ["O", "B-city"]], TAGS)
    # Row 2's argmax is I-city after O, which IOB2 forbids: decoding
    # takes the best valid path, B-city (its second choice).
    probs = _probabilities([[1, 2, 3], [1, 3, 0]])
    probs[1, 1, 2] = 0.5
    scores = export.scores(probs, gold, token_ids)
    assert scores == {"accuracy": 1.0, "slot_f1": 1.0}
    wrong = export.scores(
        _probabilities([[1, 1, 1], [1, 1, 0]]), gold, token_ids
    )
    assert wrong["slot_f1"] == 0.0
    assert wrong["accuracy"] == 0.4  # 2 of the 5 gold tags are O


def test_scores_against_tag_id_arrays_are_masked_token_accuracy():
    token_ids = np.array([[2, 3, 0, 0]], np.int32)
    labels = np.array([[1, 2, 3, 3]])
    probs = _probabilities([[1, 1, 3, 3]])
    # Padding positions (ids 0) do not count: 1 of 2 real tokens right.
    assert export.scores(probs, labels, token_ids) == {"accuracy": 0.5}


def test_examples_slice_like_arrays():
    gold = export.TaggerGold([["O"], ["B-city"], ["O"]], TAGS)
    assert len(gold[:2]) == 2
    assert gold[:2].tag_names == TAGS
