"""The image classifier's task (every zoo CNN): `ImageClassification`."""

from kerascnn.tasks.image_classification.task import ImageClassification

__all__ = ["ImageClassification"]
