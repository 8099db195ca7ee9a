"""Warm-up records: TF Serving's file, parsed back with its own protos.

Each export writes `assets.extra/tf_serving_warmup_requests`. These tests
read it with `tensorflow_serving.apis.prediction_log_pb2` (not with our
reader), check that every signature has requests whose inputs match its
SignatureDef, run them through the SavedModel, and check that the values
are the real test examples (MNIST pixels, ATIS sentences).
"""

import collections
import os

import numpy as np
import pytest

from kerascnn.errors import ExportError
from kerascnn.export import warmup
from tests.helpers import export


def parse_warmup_file(version_dir):
    """`[PredictRequest]` read with TF Serving's protos and tf.data."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    requests = []
    path = warmup.warmup_path(version_dir)
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog.FromString(record)
        assert log.WhichOneof("log_type") == "predict_log"
        requests.append(log.predict_log.request)
    return requests


def run_requests(version_dir, model_name):
    """Runs every warm-up request; `{signature: [outputs]}` plus batches."""
    import tensorflow as tf

    loaded = tf.saved_model.load(version_dir)
    requests = parse_warmup_file(version_dir)
    assert {r.model_spec.name for r in requests} == {model_name}
    by_signature = collections.defaultdict(list)
    for request in requests:
        name = request.model_spec.signature_name
        fn = loaded.signatures[name]
        specs = fn.structured_input_signature[1]
        assert set(request.inputs) == set(specs), name
        feeds = {}
        for key, proto in request.inputs.items():
            assert tf.as_dtype(proto.dtype) == specs[key].dtype, (name, key)
            feeds[key] = tf.constant(tf.make_ndarray(proto))
        outputs = {k: v.numpy() for k, v in fn(**feeds).items()}
        by_signature[name].append((feeds, outputs))
    assert set(by_signature) == set(loaded.signatures)
    return by_signature


def batch_sizes(runs):
    return [len(next(iter(feeds.values()))) for feeds, _ in runs]


def test_lenet_warmup_holds_real_digits_for_every_signature(
    lenet_run, mnist, mnist_test, tmp_path
):
    import tensorflow as tf

    result = export(lenet_run, base_dir=tmp_path, examples=mnist_test)
    runs = run_requests(result.path, "lenet")

    assert set(runs) == {
        "feature_map_gradients",
        "metadata",
        "predict_images",
        "predict_pixels",
        "serving_default",
    }
    assert runs["metadata"][0][0] == {}
    for name in ("predict_images", "predict_pixels", "serving_default"):
        assert batch_sizes(runs[name]) == list(warmup.WARMUP_BATCH_SIZES)
    # Grad-CAM's signature warms up on the same digits, predicted class.
    for (feeds, outputs), (_, served) in zip(
        runs["feature_map_gradients"], runs["serving_default"]
    ):
        assert (feeds["class_index"].numpy() == -1).all()
        np.testing.assert_array_equal(
            outputs["class_index"], served["class_ids"]
        )
    # The raw values are the real test digits, pixel for pixel.
    raw = mnist["test"][0][:7]
    pixels = runs["predict_pixels"][2][0]["pixels"].numpy()
    np.testing.assert_array_equal(pixels, raw[[3, 4, 5, 6]])
    png = runs["predict_images"][0][0]["images"].numpy()[0]
    np.testing.assert_array_equal(tf.io.decode_png(png).numpy(), raw[0])
    # The three image signatures agree row for row.
    for i in range(len(warmup.WARMUP_BATCH_SIZES)):
        ids = {
            name: runs[name][i][1]["class_ids"].tolist()
            for name in ("predict_images", "predict_pixels", "serving_default")
        }
        assert len({tuple(v) for v in ids.values()}) == 1, ids

    # What `kerascnn serve` replays; a failing record fails the load.
    seen = []
    count = warmup.replay_warmup_requests(
        result.path, lambda name, arrays: seen.append((name, sorted(arrays)))
    )
    assert count == len(seen) == 3 * 4 + 1
    assert ("predict_pixels", ["pixels"]) in seen and ("metadata", []) in seen

    def broken(name, arrays):
        if name == "predict_pixels":
            raise ValueError("boom\nmore lines")

    with pytest.raises(
        ExportError,
        match=r"signature 'predict_pixels'\) "
        "failed: boom$",
    ):
        warmup.replay_warmup_requests(result.path, broken)


def test_tagger_warmup_holds_real_atis_sentences(atis_run, tmp_path):
    result = export(
        atis_run["run"],
        base_dir=tmp_path,
        examples=atis_run["test"],
        verify=False,
    )
    runs = run_requests(result.path, "slot_tagger")

    assert set(runs) == {"metadata", "predict_sentences", "serving_default"}
    assert batch_sizes(runs["predict_sentences"]) == [1, 2, 4]
    vocab = set(result.metadata["vocab"])
    words, _, _ = atis_run["sentences"][0]
    expected = " ".join(w if w in vocab else "<unk>" for w in words)
    sentence = runs["predict_sentences"][0][0]["sentences"].numpy()[0]
    assert sentence.decode() == expected
    # Sentences and token ids give the same tags and intent.
    for (_, by_text), (feeds, by_ids) in zip(
        runs["predict_sentences"], runs["serving_default"]
    ):
        real = feeds["token_ids"].numpy() != 0
        lengths = real.sum(axis=1)
        for row, n in enumerate(lengths):
            assert by_text["lengths"][row] == n
            np.testing.assert_array_equal(
                by_text["tag_ids"][row, :n], by_ids["tag_ids"][row, :n]
            )
        np.testing.assert_array_equal(
            by_text["intent_ids"], by_ids["intent_ids"]
        )


def test_tagger_with_its_own_small_vocabulary_gets_runnable_requests(
    data_dir, tmp_path
):
    """ATIS test ids beyond the model's 6 words become the unknown id."""
    import keras

    from kerascnn import models
    from kerascnn.metadata import ModelMetadata
    from tests.helpers import save_run

    vocab = ["<pad>", "<unk>", "show", "flights", "to", "boston"]
    model = models.build(
        "slot_tagger",
        input_shape=(None,),
        num_classes=2,
        vocab_size=len(vocab),
        embedding_dim=4,
        units=4,
    )
    meta = ModelMetadata(
        model="slot_tagger",
        task="sequence_tagging",
        dataset="atis",
        input_shape=(None,),
        class_names=["O", "B-x"],
        vocab=vocab,
    )
    run = save_run(model, meta, tmp_path / "run")
    keras.backend.clear_session()
    result = export(run, base_dir=tmp_path, verify=False, data_dir=data_dir)
    runs = run_requests(result.path, "slot_tagger")

    ids = np.concatenate(
        [f["token_ids"].numpy().ravel() for f, _ in runs["serving_default"]]
    )
    assert ids.max() < len(vocab) and (ids == 1).any()
    words = {
        w
        for f, _ in runs["predict_sentences"]
        for s in f["sentences"].numpy()
        for w in s.decode().split()
    }
    assert words <= set(vocab)


def test_raw_pixels_undoes_mean_std_normalization():
    from kerascnn.export.saved_model import make_normalizer

    preprocessing = {
        "scale": 1 / 255,
        "mean": [0.49, 0.48, 0.45],
        "std": [0.25, 0.24, 0.26],
    }
    pixels = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3))
    x = np.asarray(make_normalizer(preprocessing)(pixels.astype("float32")))
    np.testing.assert_array_equal(warmup.raw_pixels(x, preprocessing), pixels)


def test_unreadable_warmup_file_is_a_clear_error(tmp_path):
    path = warmup.warmup_path(tmp_path)
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(b"not a tfrecord")
    with pytest.raises(ExportError, match="Unreadable warm-up file"):
        warmup.read_warmup_requests(tmp_path)
