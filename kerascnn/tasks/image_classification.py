"""Image classification: one softmax over classes per image."""

from kerascnn.tasks.base import Task


class ImageClassification(Task):
    """Images in, class probabilities out (every zoo CNN)."""

    name = "image_classification"
    input_rank = 3
    inputs = "images"
    checkpoint_monitor = "val_accuracy"
    pictures = frozenset({"curves", "filters", "feature-maps", "confusion"})
    big_batch_validation = True

    def evaluate(self, model, metadata, dataset, **options):
        from kerascnn.evaluation import evaluate_image_split

        return evaluate_image_split(model, metadata, dataset, **options)
