"""Image classification: one softmax over classes per image."""

from kerascnn.tasks.base import Task


class ImageClassification(Task):
    """Images in, class probabilities out (every zoo CNN)."""

    name = "image_classification"
    input_rank = 3
    inputs = "images"
    consumes = "images"
    checkpoint_monitor = "val_accuracy"
    pictures = frozenset(
        {"curves", "filters", "feature-maps", "confusion", "explain"}
    )
    big_batch_validation = True

    def evaluation_split(self, config):
        """A folder without a test split is scored on its held-out split."""
        from kerascnn.evaluation import resolve_split

        return resolve_split(
            config.dataset, "test", config.data_dir, config.validation_split
        )

    def evaluate(self, model, metadata, dataset, **options):
        from kerascnn.evaluation import evaluate_image_split

        return evaluate_image_split(model, metadata, dataset, **options)
