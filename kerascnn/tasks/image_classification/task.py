"""Image classification: one softmax over classes per image.

The export defaults of `Task` (image signatures, test-split examples,
top-1 accuracy, the model as TFLite converts it) are this task's; they
live with the generic export modules because every image model shares
them.
"""

from kerascnn import data, evaluation
from kerascnn.data.shapes import image_args
from kerascnn.tasks.base import Task


class ImageClassification(Task):
    """Images in, class probabilities out (every zoo CNN)."""

    name = "image_classification"
    consumes = "images"
    input_rank = 3
    predict_input = "images"
    checkpoint_monitor = "val_accuracy"
    pictures = frozenset(
        {"curves", "filters", "feature-maps", "confusion", "explain"}
    )
    big_batch_validation = True
    test_time_flips = True

    def evaluation_split(self, config):
        """A folder without a test split is scored on its held-out split."""
        return evaluation.resolve_split(
            config.dataset, "test", config.data_dir, config.validation_split
        )

    def evaluate(
        self,
        model,
        metadata,
        dataset,
        *,
        data_dir=None,
        split="test",
        limit=None,
        batch_size=256,
        validation_split=None,
        progress=None,
        skip_bad=False,
        tta=False,
    ):
        """Loss and `evaluation.classification_report` on a split read
        with the preprocessing the metadata records; a data set without
        a test split is scored on its held-out split (with a `note`)."""
        split, note = evaluation.resolve_split(
            dataset, split, data_dir, validation_split
        )
        image_size, channels = image_args(metadata.input_shape)
        ds, info = data.load(
            dataset,
            split,
            data_dir=data_dir,
            batch_size=batch_size,
            shuffle=False,
            augment=False,
            limit=limit,
            image_size=image_size,
            channels=channels,
            validation_size=validation_split,
            normalization=evaluation.recorded_normalization(metadata),
            skip_bad=skip_bad,
        )
        update = progress(info.num_examples) if progress else None
        metrics = evaluation.evaluate_images(
            model,
            ds,
            metadata.class_names,
            evaluation.recorded_label_smoothing(metadata),
            update,
            tta=tta,
        )
        metrics["split"] = split
        if note:
            metrics["note"] = note
        return metrics
