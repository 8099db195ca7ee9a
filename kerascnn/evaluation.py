"""Generic scoring: loss, accuracy, per-class accuracy, confusion.

The pieces a task's `Task.evaluate` scores with: what a run recorded
(`recorded_*`), which split stands in for a missing test split
(`resolve_split`), a softmax classifier's loss and report over batches
(`evaluate_images`, `classification_report`). Evaluating a run, which
needs its task, is `kerascnn.tasks.evaluate` / `evaluate_model`.

A data set without a test split (a flat `<root>/<class>/*` image folder)
is scored on its held-out validation split, with a `note` saying so; the
fraction held out is the one the run trained with (`validation_split` in
its recipe), so `fit`, `evaluate` and `export` read the same examples.
"""

from kerascnn.data import sources
from kerascnn.errors import DataError
from kerascnn.lazy import LazyModule

np = LazyModule("numpy")
keras = LazyModule("keras")
tf = LazyModule("tensorflow")


def recorded_validation_split(metadata):
    """The `validation_split` a run trained with (`None`: the default)."""
    return _recipe(metadata).get("validation_split")


def recorded_label_smoothing(metadata):
    """The label smoothing a run trained with (0: none)."""
    return float(_recipe(metadata).get("label_smoothing") or 0.0)


def recorded_normalization(metadata):
    """`{"scale", "mean", "std"}` of the model's recorded preprocessing
    (pretrained weights may fix their own), or `None`."""
    spec = metadata.preprocessing or {}
    if "scale" not in spec:
        return None
    return {k: spec.get(k) for k in ("scale", "mean", "std")}


def _recipe(metadata):
    return (metadata.extra or {}).get("recipe") or {}


def resolve_split(dataset, split="test", data_dir=None, validation_split=None):
    """The split to score, and a one-line note when another stands in.

    A data set with no test split is scored on its held-out validation
    split; any other missing split is the data set's own error.

    Returns:
        `(split, note)`; `note` is `None` unless the split was replaced.
    """
    if split != "test":
        return split, None
    try:
        sources.read(dataset, "test", data_dir, validation_split)
        return split, None
    except DataError as missing:
        try:
            raw = sources.read(
                dataset, "validation", data_dir, validation_split
            )
        except DataError:
            raise missing from None
    count = raw.split_sizes.get("validation")
    return "validation", (
        f"{dataset} has no test split; using its held-out validation "
        f"split ({count} examples) instead"
    )


def evaluate_images(model, ds, class_names, label_smoothing=0.0, on_batch=None,
                    tta=False):  # fmt: skip
    """Cross-entropy loss and `classification_report` over `(x, y)` batches.

    `tta=True` also scores the mean softmax of each image and its
    horizontal mirror, as `tta_accuracy` and `tta_loss`.

    The loss is computed as `fit` computes its `val_loss`: Keras'
    cross-entropy with the run's `label_smoothing` inside a
    `tf.function`, where it reads the logits behind the softmax.
    Clipping the probabilities at 1e-7 instead caps a confident mistake
    at 16.1 and made `evaluate` report a smaller loss than `fit` logged
    for the same model and examples.
    """
    labels, probs, losses, tta_probs, tta_losses = [], [], [], [], []
    step = _loss_step(model, label_smoothing)
    tta_step = _loss_step(model, label_smoothing, flip_average=True)
    for x, y in ds:
        batch_probs, batch_losses = step(x, y)
        probs.append(np.asarray(batch_probs, dtype=np.float32))
        losses.append(np.asarray(batch_losses, dtype=np.float64))
        labels.append(np.asarray(y))
        if tta:
            batch_probs, batch_losses = tta_step(x, y)
            tta_probs.append(np.asarray(batch_probs, dtype=np.float32))
            tta_losses.append(np.asarray(batch_losses, dtype=np.float64))
        if on_batch:
            on_batch(len(labels[-1]))  # examples scored so far, for a bar
    probs = np.concatenate(probs)
    labels = np.concatenate(labels).astype(np.int64)
    report = classification_report(labels, probs.argmax(-1), class_names)
    metrics = {"loss": float(np.concatenate(losses).mean()), **report}
    if tta:
        tta_probs = np.concatenate(tta_probs)
        metrics["tta_accuracy"] = float(np.mean(tta_probs.argmax(-1) == labels))
        metrics["tta_loss"] = float(np.concatenate(tta_losses).mean())
    return metrics


def _loss_step(model, label_smoothing=0.0, flip_average=False):
    """A compiled `(x, y) -> (probabilities, per-example loss)`; with label
    smoothing, the categorical loss the training recipe used.
    `flip_average`: the probabilities are the mean of those of `x` and of
    `x` mirrored left-right (test-time augmentation)."""

    @tf.function(reduce_retracing=True)
    def step(x, y):
        probs = model(x, training=False)
        if flip_average:
            mirrored = model(tf.reverse(x, [2]), training=False)
            probs = (probs + mirrored) / 2
        if not label_smoothing:
            return probs, keras.losses.sparse_categorical_crossentropy(y, probs)
        labels = tf.one_hot(tf.cast(y, tf.int32), tf.shape(probs)[-1])
        loss = keras.losses.categorical_crossentropy(
            tf.cast(labels, probs.dtype),
            probs,
            label_smoothing=label_smoothing,
        )
        return probs, loss

    return step


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
