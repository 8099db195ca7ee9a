"""`Task`: what one kind of model needs that another does not.

Training, evaluation, prediction, export and the pictures ask the model's
task instead of comparing task names: which value picks the best
checkpoint, the loss and metrics, extra epoch callbacks, how a split is
scored, what `predict` feeds it, which pictures apply. A new kind of
model (multi-label images, counting, ...) is one `Task` subclass passed
to `register_task`, with no change to those modules.

Tasks import nothing heavy at import time: the CLI asks them questions
before TensorFlow is loaded.
"""

import abc

from kerascnn.errors import KerasCNNError

_TASKS = {}


class Task(abc.ABC):
    """Base class; the defaults suit a softmax classifier on one input.

    Attributes:
        name: the name models (`register_model(task=...)`), data sets
            (`DatasetInfo.task`) and metadata (`ModelMetadata.task`) use.
        input_rank: rank of one example's input (3 for `(H, W, C)`
            images, 1 for token ids): what a bare Keras file with no
            metadata is recognized by.
        inputs: what `kerascnn predict` feeds it: `"images"` or `"text"`.
        checkpoint_monitor: the epoch-log value that picks
            `checkpoints/best.keras`.
        checkpoint_mode: `"max"` when a higher `checkpoint_monitor` is
            better, `"min"` when lower is (a loss).
        pictures: the `kerascnn visualize` pictures that apply.
        big_batch_validation: per-epoch validation may run in batches
            larger than training's (fixed-shape inputs only).
    """

    name = None
    input_rank = None
    inputs = "images"
    checkpoint_monitor = "val_accuracy"
    checkpoint_mode = "max"
    pictures = frozenset({"curves"})
    big_batch_validation = False

    @property
    def description(self):
        """`"image classification"`: the name in words."""
        return self.name.replace("_", " ")

    # --- Training ---

    def load_training_data(self, config, strategy=None):
        """`(train dataset, validation dataset, train DatasetInfo)`."""
        from kerascnn.inputs import load_data

        return load_data(config, strategy)

    def builder_options(self, info):
        """Builder keywords the data set decides (vocabulary sizes, ...)."""
        return {}

    def loss_and_metrics(self, make_loss):
        """`(loss, metrics)` for `model.compile`; `make_loss()` returns
        the recipe's loss (label smoothing included)."""
        return make_loss(), ["accuracy"]

    def epoch_callbacks(self, config, metadata):
        """Callbacks that must run before the checkpoint reads the logs;
        `metadata` is the run's `ModelMetadata` (vocabularies, classes)."""
        return []

    # --- Evaluation ---

    def evaluation_split(self, config):
        """`(split, note)`: the split a run's final evaluation reads, and a
        one-line note when another split stands in for the test split."""
        return "test", None

    @abc.abstractmethod
    def evaluate(self, model, metadata, dataset, **options):
        """Metrics of `model` on a split (keywords: `data_dir`,
        `batch_size`, `limit`, `split`); must include `"accuracy"`."""


def register_task(task):
    """Registers a `Task` instance under `task.name` and returns it."""
    if not isinstance(task, Task) or not task.name:
        raise KerasCNNError(
            f"register_task takes a named Task instance. Received: {task!r}"
        )
    _TASKS[task.name] = task
    return task


def task_names():
    """Registered task names, sorted."""
    return sorted(_TASKS)


def get_task(name):
    """The registered `Task` called `name`."""
    try:
        return _TASKS[name]
    except KeyError:
        raise KerasCNNError(
            f"Unknown task {name!r}; known tasks: {', '.join(task_names())}."
        ) from None


def task_for_input_shape(shape):
    """The task whose examples have `shape`'s rank (bare Keras files)."""
    rank = len(shape)
    for task in _TASKS.values():
        if task.input_rank == rank:
            return task
    raise KerasCNNError(
        f"No task takes inputs of shape {tuple(shape)}; known tasks: "
        f"{', '.join(task_names())}."
    )


def require(metadata, *, inputs=None, picture=None, what):
    """Raises one line unless `metadata`'s model takes `inputs` / draws
    `picture`; `what` says what the caller does ("predict classifies
    images")."""
    task = get_task(metadata.task)
    if (inputs is None or task.inputs == inputs) and (
        picture is None or picture in task.pictures
    ):
        return task
    kind = task.description
    article = "an" if kind[:1] in "aeiou" else "a"
    raise KerasCNNError(
        f"{what}; {metadata.model!r} is {article} {kind} model."
    )
