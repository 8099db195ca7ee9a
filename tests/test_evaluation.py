"""`kerascnn.evaluation`: the test report of an image classifier."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerascnn.data.shapes import image_args
from kerascnn.evaluation import evaluate_images

# Fixed class probabilities per example (rows sum to 1), labels chosen so
# that 3 of 5 are right: one wrong with high confidence (log 0.05).
PROBS = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.1, 0.8, 0.1],
        [0.05, 0.9, 0.05],
        [0.2, 0.2, 0.6],
        [0.5, 0.3, 0.2],
    ],
    dtype=np.float32,
)
LABELS = np.array([0, 1, 0, 2, 1])


def _model_returning(probs):
    """A model whose output for example i is `probs[i]` (input: one-hot i)."""
    inputs = keras.Input((len(probs),))
    dense = keras.layers.Dense(probs.shape[1], use_bias=False)
    model = keras.Model(inputs, dense(inputs))
    dense.set_weights([probs])
    return model


def test_loss_accuracy_and_confusion_against_hand_computed_values():
    x = np.eye(len(PROBS), dtype=np.float32)
    ds = tf.data.Dataset.from_tensor_slices((x, LABELS)).batch(2)
    report = evaluate_images(_model_returning(PROBS), ds, ["a", "b", "c"])
    # Mean negative log-probability of the true class.
    expected = -np.mean(np.log([0.7, 0.8, 0.05, 0.6, 0.3]))
    assert report["loss"] == pytest.approx(expected, rel=1e-6)
    assert report["accuracy"] == pytest.approx(3 / 5)
    assert report["num_examples"] == 5
    assert report["confusion_matrix"] == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert report["per_class_accuracy"] == {"a": 0.5, "b": 0.5, "c": 1.0}
    assert report["class_names"] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "shape, expected",
    [
        ((28, 28, 1), ((28, 28), 1)),
        ((None,), (None, None)),
        (None, (None,) * 2),
    ],
)
def test_image_args(shape, expected):
    assert image_args(shape) == expected


def _confident_softmax_model():
    """A softmax classifier whose logits are far apart (|z| ~ 40), so a
    wrong answer costs far more than the -log(1e-7) = 16.1 of clipping."""
    inputs = keras.Input((4,))
    logits = keras.layers.Dense(3, name="logits")(inputs)
    outputs = keras.layers.Activation("softmax")(logits)
    model = keras.Model(inputs, outputs)
    kernel = np.array(
        [[40, -40, 0], [-40, 40, 0], [0, -40, 40], [40, 0, -40]], np.float32
    )
    model.get_layer("logits").set_weights([kernel, np.zeros(3, np.float32)])
    return model


def _confident_data():
    x = np.eye(4, dtype=np.float32)
    y = np.array([1, 0, 2, 0])  # two confident mistakes
    return x, y


def test_loss_equals_the_val_loss_fit_logs_on_the_same_examples():
    model = _confident_softmax_model()
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.0),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    x, y = _confident_data()
    val = tf.data.Dataset.from_tensor_slices((x, y)).batch(3)
    history = model.fit(
        x, y, validation_data=val, epochs=1, batch_size=4, verbose=0
    )
    report = evaluate_images(model, val, ["a", "b", "c"])
    val_loss = history.history["val_loss"][-1]
    assert val_loss > 20  # the logits' loss, not one clipped at 16.1
    assert report["loss"] == pytest.approx(val_loss, rel=1e-5)
    assert report["accuracy"] == pytest.approx(
        history.history["val_accuracy"][-1]
    )


def test_loss_with_label_smoothing_equals_the_val_loss_fit_logs():
    from kerascnn.losses import SparseSmoothedCrossentropy

    model = _confident_softmax_model()
    kernel, bias = model.get_layer("logits").get_weights()
    model.get_layer("logits").set_weights([kernel / 20, bias])  # |z| ~ 2
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.0),
        loss=SparseSmoothedCrossentropy(0.1),
    )
    x, _ = _confident_data()
    y = np.array([1, 1, 2, 0])  # the mean true logit is not the row mean
    val = tf.data.Dataset.from_tensor_slices((x, y)).batch(3)
    history = model.fit(
        x, y, validation_data=val, epochs=1, batch_size=4, verbose=0
    )
    val_loss = history.history["val_loss"][-1]
    smoothed = evaluate_images(model, val, ["a", "b", "c"], 0.1)["loss"]
    plain = evaluate_images(model, val, ["a", "b", "c"])["loss"]
    assert smoothed == pytest.approx(val_loss, rel=1e-5)
    assert abs(plain - val_loss) > 1e-3  # smoothing changes the number


def test_evaluate_images_reports_progress_per_batch():
    model = _confident_softmax_model()
    x, y = _confident_data()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(3)
    seen = []
    report = evaluate_images(model, ds, ["a", "b", "c"], on_batch=seen.append)
    assert seen == [3, 1] and sum(seen) == report["num_examples"] == 4


def test_tta_scores_the_mean_of_each_image_and_its_mirror_separately():
    # Images of 1x2 pixels; the model's probabilities are a fixed linear
    # map of the pixels, so a mirrored image reads the other row.
    weights = np.array([[0.6, 0.3, 0.1], [0.0, 0.2, 0.8]], np.float32)
    x = np.array([[1, 0], [0, 1], [0.5, 0.5], [1, 0]], np.float32)
    labels = np.array([2, 1, 2, 2])
    inputs = keras.Input((1, 2, 1))
    dense = keras.layers.Dense(3, use_bias=False)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([weights])
    images = x.reshape(-1, 1, 2, 1)
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(3)

    plain = evaluate_images(model, ds, ["a", "b", "c"])
    report = evaluate_images(model, ds, ["a", "b", "c"], tta=True)
    mean = (x @ weights + x[:, ::-1] @ weights) / 2
    assert report["tta_accuracy"] == pytest.approx(
        np.mean(mean.argmax(-1) == labels)
    )
    assert report["tta_accuracy"] == pytest.approx(3 / 4)  # all but [0, 1]
    assert report["accuracy"] == plain["accuracy"] == pytest.approx(1 / 4)
    assert report["tta_loss"] == pytest.approx(
        -np.mean(np.log(mean[np.arange(4), labels])), rel=1e-5
    )
    assert "tta_accuracy" not in plain


def test_tta_is_refused_for_a_text_tagger():
    from kerascnn.errors import KerasCNNError
    from kerascnn.tasks import evaluate_model
    from tests.helpers import tagger_metadata

    meta = tagger_metadata(["O", "B-city"], ["<pad>", "boston"], ["flight"])
    with pytest.raises(KerasCNNError, match="image classifiers"):
        evaluate_model(None, meta, "atis", tta=True)
