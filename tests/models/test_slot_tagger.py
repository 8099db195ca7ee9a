import numpy as np
import pytest

from kerascnn import models
from kerascnn.errors import InvalidArgumentError
from tests.helpers import assert_round_trip_in_fresh_process


def _ids(rng, lengths, vocab_size, max_len):
    x = np.zeros((len(lengths), max_len), dtype=np.int32)
    for i, n in enumerate(lengths):
        x[i, :n] = rng.integers(2, vocab_size, size=n)
    return x


def test_tagger_outputs_one_distribution_per_token():
    model = models.build("slot_tagger", num_classes=9, vocab_size=50, units=8)
    x = _ids(np.random.default_rng(0), [3, 7], 50, 7)
    y = np.asarray(model(x))
    assert y.shape == (2, 7, 9)
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-5)


def test_padding_does_not_change_real_tokens():
    model = models.build("slot_tagger", num_classes=5, vocab_size=30, units=8)
    x = _ids(np.random.default_rng(1), [4], 30, 4)
    padded = np.pad(x, [[0, 0], [0, 6]])
    short = np.asarray(model(x))[0]
    long = np.asarray(model(padded))[0, :4]
    np.testing.assert_allclose(short, long, atol=1e-6)


def test_joint_intent_head_and_stacked_layers():
    model = models.build(
        "slot_tagger",
        num_classes=5,
        vocab_size=30,
        num_intents=4,
        units=8,
        num_layers=2,
        dropout=0.1,
    )
    out = model(_ids(np.random.default_rng(2), [2, 5], 30, 5))
    assert tuple(out["tags"].shape) == (2, 5, 5)
    assert tuple(out["intent"].shape) == (2, 4)
    assert model.get_layer("bilstm2") is not None


def test_unroll_needs_fixed_length():
    with pytest.raises(InvalidArgumentError, match="fixed sequence length"):
        models.build("slot_tagger", unroll=True)
    model = models.build("slot_tagger", input_shape=(12,), unroll=True, units=4)
    assert model.input_shape == (None, 12)


def test_tagger_saves_and_loads_in_a_fresh_process(tmp_path):
    model = models.build("slot_tagger", num_classes=6, vocab_size=40, units=8)
    x = _ids(np.random.default_rng(3), [2, 6, 4], 40, 6)
    assert_round_trip_in_fresh_process(model, x, tmp_path, atol=1e-6)
