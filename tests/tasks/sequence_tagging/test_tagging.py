"""BIO-constrained decoding (numpy and in-graph) and the tagger layers."""

import itertools

import numpy as np
import pytest

from kerascnn.errors import InvalidArgumentError
from kerascnn.layers.text import IntentPool, WordDropout
from kerascnn.tasks.sequence_tagging import tagging

TAGS = ["<pad>", "<unk>", "O", "B-a", "I-a", "B-b", "I-b"]


def _valid(tags):
    prev = "O"
    for tag in tags:
        if tag.startswith("<"):
            return False
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            return False
        prev = tag
    return True


def _random_probs(rng, shape):
    logits = rng.normal(0, 3, size=shape)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_allowed_transitions():
    start, trans = tagging.allowed_transitions(TAGS)
    assert start.tolist() == [False, False, True, True, False, True, False]
    i_a, b_a, b_b, o = TAGS.index("I-a"), 3, 5, 2
    assert trans[b_a, i_a] and trans[i_a, i_a]
    assert not trans[o, i_a] and not trans[b_b, i_a]
    assert not trans[:, 0].any() and not trans[:, 1].any()


def test_viterbi_never_emits_i_after_o_or_another_type():
    rng = np.random.default_rng(0)
    probs = _random_probs(rng, (200, 9, len(TAGS)))
    lengths = rng.integers(1, 10, 200)
    decoded = tagging.decode_tags(probs, lengths, TAGS)
    assert all(_valid(tags) for tags in decoded)
    assert [len(t) for t in decoded] == lengths.tolist()
    raw = tagging.decode_tags(probs, lengths, TAGS, constrained=False)
    assert not all(_valid(t) for t in raw)  # argmax alone breaks IOB


def test_viterbi_finds_the_best_valid_path_by_brute_force():
    rng = np.random.default_rng(1)
    start, trans = tagging.allowed_transitions(TAGS)
    for _ in range(20):
        probs = _random_probs(rng, (4, len(TAGS)))
        path = tagging.viterbi_decode(probs, start, trans)
        best = max(
            (
                p
                for p in itertools.product(range(len(TAGS)), repeat=4)
                if _valid([TAGS[i] for i in p])
            ),
            key=lambda p: sum(np.log(probs[t, i]) for t, i in enumerate(p)),
        )
        assert tuple(path) == best


def test_in_graph_decoding_equals_numpy_viterbi():
    from kerascnn.tasks.sequence_tagging.graph import constrained_decode

    rng = np.random.default_rng(2)
    probs = _random_probs(rng, (30, 8, len(TAGS))).astype(np.float32)
    lengths = rng.integers(0, 9, 30)
    start, trans = tagging.allowed_transitions(TAGS)
    ids = constrained_decode(probs, lengths, start, trans).numpy()
    for row, n in zip(range(30), lengths):
        expected = tagging.viterbi_decode(probs[row, :n], start, trans)
        assert ids[row, :n].tolist() == (expected if n else [])
        assert not ids[row, n:].any()
    one = constrained_decode(probs[:, :1], np.ones(30), start, trans).numpy()
    assert one.shape == (30, 1)


def test_word_dropout_replaces_words_only_in_training():
    layer = WordDropout(0.5, seed=0)
    x = np.tile(np.array([[5, 6, 7, 8, 9, 0, 0]], np.int32), (200, 1))
    y = np.asarray(layer(x, training=True))
    assert (y[:, 5:] == 0).all()  # padding stays padding
    dropped = (y[:, :5] == 1).mean()
    assert 0.4 < dropped < 0.6
    assert (y[:, :5][y[:, :5] != 1] == x[:, :5][y[:, :5] != 1]).all()
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)


def test_attention_intent_pool_ignores_padding():

    pool = IntentPool("attention")
    x = np.random.default_rng(3).normal(size=(2, 4, 6)).astype("float32")
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)
    out = np.asarray(pool(x, mask=mask))
    assert out.shape == (2, 12)
    x2 = x.copy()
    x2[0, 3] = 100.0  # change a padded step
    x2[1, 2:] = -50.0
    np.testing.assert_allclose(np.asarray(pool(x2, mask=mask)), out, atol=1e-6)
    # Final states: forward half at the last real token, backward at 0.
    np.testing.assert_allclose(out[0, :3], x[0, 2, :3], atol=1e-6)
    np.testing.assert_allclose(out[1, 3:6], x[1, 0, 3:], atol=1e-6)
    with pytest.raises(InvalidArgumentError, match="intent_pooling"):
        IntentPool("max")
