"""Tasks: what differs between the kinds of model kerascnn trains.

    from kerascnn import tasks
    task = tasks.get_task(metadata.task)
    task.checkpoint_monitor          # 'val_accuracy'

See `kerascnn.tasks.base.Task` for what a task decides and how to add one.
"""

from kerascnn.tasks.base import (
    Task,
    get_task,
    register_task,
    require,
    takes,
    task_for_input_shape,
    task_names,
)
from kerascnn.tasks.image_classification import ImageClassification
from kerascnn.tasks.sequence_tagging import SequenceTagging

IMAGE_CLASSIFICATION = register_task(ImageClassification())
SEQUENCE_TAGGING = register_task(SequenceTagging())

__all__ = [
    "IMAGE_CLASSIFICATION",
    "SEQUENCE_TAGGING",
    "ImageClassification",
    "SequenceTagging",
    "Task",
    "get_task",
    "register_task",
    "require",
    "takes",
    "task_for_input_shape",
    "task_names",
]
