"""Evaluating a run: load it, resolve its task, ask the task to score.

    from kerascnn import tasks
    tasks.evaluate("runs/lenet-20261127-153000")["confusion_matrix"]

`fit` calls `evaluate_model` on its final model and writes the result to
the run's `metrics.json`; `kerascnn evaluate` and `kerascnn visualize
confusion` call the same code. How a split is scored is the task's
(`Task.evaluate`): image classifiers by `kerascnn.evaluation`'s
`classification_report`, the slot tagger by conlleval spans on the gold
tag strings (`sequence_tagging.tagging.evaluate_atis`).

A data set without a test split (a flat `<root>/<class>/*` image folder)
is scored on its held-out validation split, with a `note` saying so; the
fraction held out is the one the run trained with (`validation_split` in
its recipe), so `fit`, `evaluate` and `export` read the same examples.
"""

from kerascnn.errors import KerasCNNError
from kerascnn.evaluation import recorded_validation_split
from kerascnn.tasks.registry import get_task, load_model_and_metadata


def evaluate(
    source,
    dataset=None,
    *,
    data_dir=None,
    batch_size=256,
    limit=None,
    split="test",
    validation_split=None,
    progress=None,
    skip_bad=False,
    tta=False,
):
    """Loads a run directory or `.keras` file and evaluates it.

    `validation_split` defaults to the one the run trained with;
    `progress` (optional, `total -> update(n)`) is told how far scoring
    got, for a progress bar; `skip_bad` skips undecodable image files
    (named in one notice) instead of stopping; `tta` as in
    `evaluate_model`.
    """
    model, metadata = load_model_and_metadata(source)
    if validation_split is None:
        validation_split = recorded_validation_split(metadata)
    return evaluate_model(
        model,
        metadata,
        dataset,
        data_dir=data_dir,
        batch_size=batch_size,
        limit=limit,
        split=split,
        validation_split=validation_split,
        progress=progress,
        skip_bad=skip_bad,
        tta=tta,
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
    validation_split=None,
    progress=None,
    skip_bad=False,
    tta=False,
):
    """Metrics of `model` on a split of `dataset` (default: its training
    data set), read with the preprocessing its metadata records, by the
    model's task (`Task.evaluate`).

    The result names the `split` scored, with a `note` when the held-out
    validation split stood in for a missing test split. `tta=True` (image
    classifiers) adds test-time augmentation scored separately:
    `tta_accuracy` and `tta_loss` of the mean of the softmax outputs of
    each image and its mirror image; the other metrics stay those of the
    plain model, as served.
    """
    dataset = dataset or metadata.dataset
    if not dataset:
        raise KerasCNNError(
            "The model's metadata names no data set; pass --dataset."
        )
    task = get_task(metadata.task)
    if tta and not task.test_time_flips:
        raise KerasCNNError(
            "Test-time flips (--tta) apply to image classifiers; "
            f"{metadata.model!r} does {task.description}."
        )
    return task.evaluate(
        model,
        metadata,
        dataset,
        data_dir=data_dir,
        batch_size=batch_size,
        limit=limit,
        split=split,
        validation_split=validation_split,
        progress=progress,
        skip_bad=skip_bad,
        tta=tta,
    )
