"""AlexNet (custom LRN layer) and the slot tagger through both formats."""

import os

import numpy as np
import pytest
import tensorflow as tf

from kerascnn.export.inspect import inspect_artifact
from tests.export.conftest import tflite_op_counts, tflite_ops
from tests.helpers import export, save_run


@pytest.fixture(scope="module")
def alexnet_run(tmp_path_factory):
    import keras

    from kerascnn import models
    from kerascnn.metadata import ModelMetadata

    keras.utils.set_random_seed(1)
    model = models.build(
        "alexnet", input_shape=(32, 32, 3), num_classes=10, fc_units=16
    )
    meta = ModelMetadata(
        model="alexnet",
        dataset="cifar10",
        input_shape=(32, 32, 3),
        class_names=list("abcdefghij"),
        preprocessing={
            "scale": 1 / 255,
            "mean": [0.49, 0.48, 0.45],
            "std": [0.25, 0.24, 0.26],
            "channels": 3,
            "image_size": [32, 32],
        },
    )
    return save_run(model, meta, tmp_path_factory.mktemp("runs") / "alex")


@pytest.fixture(scope="module")
def alexnet_examples():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 32, 32, 3)).astype(np.float32)
    return x, rng.integers(0, 10, size=8)


def test_alexnet_saved_model_and_tflite(
    alexnet_run, alexnet_examples, tmp_path
):
    saved = export(alexnet_run, base_dir=tmp_path, examples=alexnet_examples)
    assert saved.verification.artifact.max_diff <= 1e-4
    lite = export(
        alexnet_run,
        format="tflite",
        base_dir=tmp_path,
        examples=alexnet_examples,
    )
    assert lite.verification.artifact.max_diff <= 1e-3
    assert sorted(os.listdir(tmp_path / "alexnet")) == [
        "1",
        "MODEL_CARD.md",
        "alexnet.tflite",
        "alexnet.tflite.json",
        "model_card.json",
    ]
    builtin, custom = tflite_ops(lite.path)
    assert custom == []  # LRN has a builtin TFLite kernel: no Flex
    assert "LOCAL_RESPONSE_NORMALIZATION" in builtin
    loaded = tf.saved_model.load(saved.path)
    out = loaded.signatures["predict_pixels"](
        pixels=tf.fill((2, 32, 32, 3), 128.0)
    )
    assert out["class_names"].shape == (2,)
    # LRN is traced into a plain op: no custom-object lookup at load time.
    graph = loaded.signatures["serving_default"].graph.as_graph_def()
    ops = {n.op for f in graph.library.function for n in f.node_def}
    assert "LRN" in ops


def test_resnet20_int8_tflite_has_builtin_ops_only(tmp_path):
    """The zero-padding shortcut (a custom Keras layer) converts to
    builtin ops, in int8 too (float: LeNet and AlexNet above)."""
    import keras

    from kerascnn import models
    from kerascnn.metadata import ModelMetadata

    keras.utils.set_random_seed(2)
    model = models.build(
        "resnet20", input_shape=(32, 32, 3), num_classes=10, shortcut="zero_pad"
    )
    meta = ModelMetadata(
        model="resnet20",
        dataset="cifar10",
        input_shape=(32, 32, 3),
        class_names=list("abcdefghij"),
    )
    run = save_run(model, meta, tmp_path / "run")
    rng = np.random.default_rng(0)
    result = export(
        run,
        format="tflite",
        quantize="int8",
        base_dir=tmp_path,
        verify=False,
        calibration_data=rng.normal(size=(8, 32, 32, 3)),
    )
    builtin, custom = tflite_ops(result.path)
    assert custom == []
    assert {"CONV_2D", "ADD", "PAD", "STRIDED_SLICE", "QUANTIZE"} <= builtin


# === Slot tagger, trained one epoch on real ATIS ===


def test_tagger_saved_model_sentences_in_tags_out(atis_run, tmp_path):
    result = export(
        atis_run["run"], base_dir=tmp_path, examples=atis_run["test"]
    )
    assert result.verification.artifact.max_diff <= 1e-4
    loaded = tf.saved_model.load(result.path)
    words, _, _ = atis_run["sentences"][0]
    sentences = tf.constant([" ".join(words).upper(), "show me flights"])
    out = loaded.signatures["predict_sentences"](sentences=sentences)
    assert out["lengths"].numpy().tolist() == [len(words), 3]
    assert [t.decode() for t in out["tokens"].numpy()[1][:3]] == [
        "show",
        "me",
        "flights",
    ]
    tags = out["tags"].numpy()
    assert tags.shape == (2, len(words))
    assert all(t != b"" for t in tags[0]) and tags[1][3] == b""
    tag_names = set(atis_run["tags"])
    assert {t.decode() for t in tags[0]} <= tag_names
    assert out["intent"].numpy()[0].decode() in atis_run["intents"]
    # Same answer as the token-id signature on the encoded sentence.
    ids = atis_run["test"][0][:1, : len(words)]
    by_ids = loaded.signatures["serving_default"](token_ids=tf.constant(ids))
    assert (by_ids["tags"].numpy()[0] == tags[0]).all()


def test_tagger_tflite_fixed_length_builtin_ops(atis_run, tmp_path):
    result = export(
        atis_run["run"],
        format="tflite",
        base_dir=tmp_path,
        max_length=24,
        examples=atis_run["test"],
    )
    assert result.verification.artifact.max_diff <= 1e-3
    assert result.metadata["max_length"] == 24
    info = inspect_artifact(result.path)
    (sig,) = info["signatures"].values()
    assert sig["inputs"][0]["shape"] == [1, 24]
    assert sig["inputs"][0]["dtype"] == "int32"
    assert {o["name"] for o in sig["outputs"]} == {"tags", "intent", "tag_ids"}
    assert info["metadata"]["vocab"][:2] == ["<pad>", "<unk>"]
    builtin, custom = tflite_ops(result.path)
    assert custom == []  # no Flex / custom ops: builtins only
    # TFLite has no fused op for this BiLSTM: it is unrolled into builtin
    # cell ops, one gate SPLIT and two TANH (candidate, output) per
    # direction and time step, and sigmoid gates beside them.
    counts = tflite_op_counts(result.path)
    cell_steps = 2 * 24
    assert counts["SPLIT"] == cell_steps
    assert counts["TANH"] == 2 * cell_steps
    assert counts["LOGISTIC"] >= 2 * cell_steps
