"""Test-set evaluation: loss, accuracy, per-class accuracy, confusion.

    from kerascnn.evaluation import evaluate
    evaluate("runs/lenet-20261127-153000")["confusion_matrix"]

`fit` calls `evaluate_model` on its final model and writes the result to
the run's `metrics.json`; `kerascnn evaluate` and `kerascnn visualize
confusion` call the same code. Image classifiers are scored here; the slot
tagger by `kerascnn.tagging.evaluate_atis` (conlleval spans on the gold tag
strings, per-slot F1, token and intent accuracy, exact match).
"""

import numpy as np

from kerascnn.data.shapes import image_args
from kerascnn.errors import KerasCNNError


def evaluate(
    source,
    dataset=None,
    *,
    data_dir=None,
    batch_size=256,
    limit=None,
    split="test",
):
    """Loads a run directory or `.keras` file and evaluates it."""
    from kerascnn.metadata import load_model_and_metadata

    model, metadata = load_model_and_metadata(source)
    return evaluate_model(
        model,
        metadata,
        dataset,
        data_dir=data_dir,
        batch_size=batch_size,
        limit=limit,
        split=split,
    )


def evaluate_model(
    model,
    metadata,
    dataset=None,
    *,
    data_dir=None,
    batch_size=256,
    limit=None,
    split="test",
):
    """Metrics of `model` on a split of `dataset` (default: its training
    data set), read with the preprocessing its metadata records."""
    from kerascnn import tasks

    dataset = dataset or metadata.dataset
    if not dataset:
        raise KerasCNNError(
            "The model's metadata names no data set; pass --dataset."
        )
    return tasks.get_task(metadata.task).evaluate(
        model,
        metadata,
        dataset,
        data_dir=data_dir,
        batch_size=batch_size,
        limit=limit,
        split=split,
    )


def evaluate_image_split(
    model, metadata, dataset, *, data_dir, batch_size, limit, split
):
    """Loss and `classification_report` of an image classifier on a split
    read with the preprocessing its metadata records."""
    from kerascnn import data

    image_size, channels = image_args(metadata.input_shape)
    ds, _ = data.load(
        dataset,
        split,
        data_dir=data_dir,
        batch_size=batch_size,
        shuffle=False,
        augment=False,
        limit=limit,
        image_size=image_size,
        channels=channels,
    )
    return evaluate_images(model, ds, metadata.class_names)


def evaluate_images(model, ds, class_names):
    """Cross-entropy loss and `classification_report` over `(x, y)` batches.

    The loss is Keras' `SparseCategoricalCrossentropy` on the model's
    probabilities (without the training recipe's label smoothing), so it
    is the number `model.evaluate` would print.
    """
    import keras

    labels, probs = [], []
    for x, y in ds:
        probs.append(np.asarray(model(x, training=False), dtype=np.float32))
        labels.append(np.asarray(y))
    probs = np.concatenate(probs)
    labels = np.concatenate(labels).astype(np.int64)
    loss = keras.losses.SparseCategoricalCrossentropy()(labels, probs)
    report = classification_report(labels, probs.argmax(-1), class_names)
    return {"loss": float(keras.ops.convert_to_numpy(loss)), **report}


def classification_report(labels, predictions, class_names):
    """Accuracy, per-class accuracy and confusion matrix as plain lists.

    `confusion_matrix[i][j]` counts examples of class `i` predicted as `j`;
    a class with no examples has per-class accuracy `None`.
    """
    labels = np.asarray(labels, dtype=np.int64).ravel()
    predictions = np.asarray(predictions, dtype=np.int64).ravel()
    n = len(class_names)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    support = confusion.sum(axis=1)
    per_class = {
        name: (float(confusion[i, i] / support[i]) if support[i] else None)
        for i, name in enumerate(class_names)
    }
    return {
        "accuracy": float(np.mean(labels == predictions))
        if len(labels)
        else 0.0,
        "num_examples": int(len(labels)),
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion.tolist(),
        "class_names": list(class_names),
    }
