"""Tasks: what differs between the kinds of model kerascnn trains.

    from kerascnn import tasks
    task = tasks.get_task(metadata.task)
    task.checkpoint_monitor          # 'val_accuracy'

One package per task (`image_classification/`, `sequence_tagging/`)
holds everything that differs for it, its export pieces included; see
`kerascnn.tasks.base.Task` for what a task decides, and
docs/architecture.md ("Adding a task") for how to add one. Generic
modules (`data`, `export`, `models`, `layers`, `metadata`) never import
this package: whoever needs a task resolves it here and passes it down.
"""

from kerascnn.tasks.base import Task
from kerascnn.tasks.image_classification import ImageClassification
from kerascnn.tasks.registry import (
    get_task,
    load_model_and_metadata,
    register_task,
    require,
    takes,
    task_for_input_shape,
    task_names,
    task_of,
)
from kerascnn.tasks.scoring import evaluate, evaluate_model
from kerascnn.tasks.sequence_tagging import SequenceTagging

IMAGE_CLASSIFICATION = register_task(ImageClassification())
SEQUENCE_TAGGING = register_task(SequenceTagging())

__all__ = [
    "IMAGE_CLASSIFICATION",
    "SEQUENCE_TAGGING",
    "ImageClassification",
    "SequenceTagging",
    "Task",
    "evaluate",
    "evaluate_model",
    "get_task",
    "load_model_and_metadata",
    "register_task",
    "require",
    "takes",
    "task_for_input_shape",
    "task_names",
    "task_of",
]
