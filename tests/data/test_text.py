"""ATIS: reader, vocabularies (train only), batches, get_file download."""

import os
import shutil

import numpy as np
import pytest

from kerascnn.data import load, sources, text
from kerascnn.errors import DataError


def atis_paths(data_dir):
    return {
        s: os.path.join(data_dir, "atis", f)
        for s, (f, _) in sources.ATIS_FILES.items()
    }


def test_parse_line_with_stray_spaces():
    u = text.parse_iob_line(
        "BOS fly to boston EOS \t  O O O B-toloc.city_name atis_flight\n"
    )
    assert u.words == ("fly", "to", "boston")
    assert u.tags == ("O", "O", "B-toloc.city_name")
    assert u.intent == "atis_flight"


def test_tag_count_mismatch_names_file_and_line(tmp_path):
    path = tmp_path / "bad.iob"
    path.write_text(
        "BOS hi EOS\tO O atis_flight\n"
        "BOS fly to boston EOS\tO O O atis_flight\n"
    )
    with pytest.raises(DataError, match=rf"{path}, line 2: 3 word\(s\) but 2"):
        text.read_iob(str(path))
    with pytest.warns(UserWarning, match="Skipped 1 bad example"):
        assert len(text.read_iob(str(path), skip_bad=True)) == 1


def test_vocabulary_ids_and_string_lookup():
    vocab = text.Vocabulary.build([["b", "a", "b"], ["c"]])
    assert vocab.tokens == ["<pad>", "<unk>", "b", "a", "c"]
    assert vocab.encode(["a", "zzz"]).tolist() == [3, 1]
    assert vocab.decode([2, 3, 0, 0]) == ["b", "a"]
    layer = vocab.lookup()
    assert layer(["b", "a", "c", "zzz"]).numpy().tolist() == [2, 3, 4, 1]
    inverse = vocab.lookup(invert=True)
    assert [t.decode() for t in inverse([2, 3]).numpy()] == ["b", "a"]
    intents = text.Vocabulary.build([["x"], ["y"], ["x"]], mask_token=None)
    assert intents.tokens == ["<unk>", "x", "y"]
    assert intents.lookup()(["y", "new"]).numpy().tolist() == [2, 0]


def test_atis_sizes_and_batches(data_dir):
    ds, info = load("atis", "train", data_dir=data_dir, batch_size=64)
    assert info.kind == "tagged_text" and info.input_shape == (None,)
    assert info.split_sizes == {"train": 4478, "validation": 500, "test": 893}
    assert info.num_examples == 4478
    assert info.vocab[:2] == ["<pad>", "<unk>"]
    assert info.class_names[0] == "<pad>" and info.num_classes == len(
        info.class_names
    )
    words, labels = next(iter(ds))
    assert words.dtype.name == "int32" and labels["tags"].shape == words.shape
    assert labels["intent"].shape == (words.shape[0],)
    # Every token has a tag; padding lines up.
    np.testing.assert_array_equal(
        words.numpy() == 0, labels["tags"].numpy() == 0
    )
    total = sum(int(w.shape[0]) for w, _ in ds)
    assert total == 4478


def test_atis_raw_file_counts_and_every_token_tagged(data_dir):
    paths = atis_paths(data_dir)
    train = text.read_iob(paths["train"])
    test = text.read_iob(paths["test"])
    assert len(train) == 4978 and len(test) == 893
    assert all(len(u.words) == len(u.tags) > 0 for u in train + test)


def test_atis_vocab_from_train_only_and_round_trip(data_dir):
    paths = atis_paths(data_dir)
    train = text.read_iob(paths["train"])
    portion, dev = train[:-500], train[-500:]
    _, info = load("atis", "dev", data_dir=data_dir)
    assert info.num_examples == 500
    vocab = set(info.vocab)
    norm = text.normalize_word
    seen = {norm(w) for u in portion for w in u.words}
    assert vocab - {"<pad>", "<unk>"} == seen
    dev_only = sorted({norm(w) for u in dev for w in u.words} - seen)
    assert dev_only  # there are words only in dev; they map to OOV
    vocabs = info.vocabularies
    assert vocabs.words.encode(dev_only[:1]).tolist() == [1]
    # ids -> (normalised) strings round trip on the first dev utterance.
    ds, _ = load("atis", "dev", data_dir=data_dir, batch_size=4)
    words, labels = next(iter(ds))
    first = dev[0]
    decoded = vocabs.words.decode(words[0].numpy())
    expected = [norm(w) for w in first.words]
    assert decoded == [w if w in seen else "<unk>" for w in expected]
    assert vocabs.tags.decode(labels["tags"][0].numpy()) == list(first.tags)
    intent = int(labels["intent"][0])
    assert vocabs.intents.tokens[intent] == first.intent


def test_atis_unseen_test_intents_map_to_oov(data_dir):
    ds, info = load("atis", "test", data_dir=data_dir, batch_size=1000)
    _, labels = next(iter(ds))
    test = text.read_iob(atis_paths(data_dir)["test"])
    unseen = sum(u.intent not in info.intent_names for u in test)
    assert unseen > 0
    assert int(np.sum(labels["intent"].numpy() == 0)) == unseen
    assert info.num_examples == 893


def test_atis_get_file_from_file_url(tmp_path, monkeypatch, data_dir):
    url = "file://" + os.path.join(os.path.abspath(data_dir), "atis") + "/"
    paths = sources.download_atis(url, cache_dir=str(tmp_path / "cache"))
    assert os.path.isfile(paths["train"]) and os.path.isfile(paths["test"])
    # load() without a local copy downloads from $KERASCNN_ATIS_URL.
    monkeypatch.setenv(sources.ENV_ATIS_URL, url)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv(sources.ENV_DATA_DIR, raising=False)
    _, info = load("atis", "test")
    assert info.num_examples == 893 and "downloaded" in info.source


def test_atis_md5_mismatch(tmp_path, data_dir):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for f, _ in sources.ATIS_FILES.values():
        shutil.copy(os.path.join(data_dir, "atis", f), mirror / f)
    with open(mirror / "atis.train.w-intent.iob", "a") as f:
        f.write("BOS extra EOS\tO O atis_flight\n")
    with pytest.raises(DataError, match="md5 ede48c4eb34493de7d66ac4657624484"):
        sources.download_atis(f"file://{mirror}", cache_dir=str(tmp_path / "c"))


def test_words_are_lowercased_and_digits_become_shapes():
    assert text.normalize_word("Flight") == "flight"
    assert text.normalize_word("1991") == "DIGITDIGITDIGITDIGIT"
    assert text.normalize_word("ua123") == "uaDIGITDIGITDIGIT"
    tokens, words = text.tokenize("  Flights  on 21st ")
    assert tokens == ["Flights", "on", "21st"]
    assert words == ["flights", "on", "DIGITDIGITst"]
    assert text.tokenize("") == ([], [])


def test_vocabulary_is_built_from_normalised_words():
    utterances = [
        text.Utterance(("flight", "1291"), ("O", "B-flight_number"), "f"),
        text.Utterance(("Flight", "838"), ("O", "B-flight_number"), "f"),
    ]
    vocabs = text.AtisVocabularies.build(utterances)
    assert "DIGITDIGITDIGITDIGIT" in vocabs.words.tokens
    assert "Flight" not in vocabs.words.tokens
    assert text.uses_digit_shapes(vocabs.words.tokens)
    assert not text.uses_digit_shapes(["<pad>", "<unk>", "1291"])
