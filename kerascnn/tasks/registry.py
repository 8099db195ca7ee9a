"""The task registry: names -> `Task` objects, and what asks it.

Generic modules never look a task up by name: whoever needs one (train,
predict, the CLI's commands, the pictures) resolves it here and passes
the object down (`kerascnn.export.export(..., task=...)`).
"""

from kerascnn import metadata as _metadata
from kerascnn.errors import KerasCNNError
from kerascnn.tasks.base import Task

_TASKS = {}


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


def load_model_and_metadata(source):
    """`kerascnn.metadata.load_model_and_metadata`, where a bare `.keras`
    file without metadata gets the task that takes inputs of its rank."""
    return _metadata.load_model_and_metadata(
        source, bare_task=lambda shape: task_for_input_shape(shape).name
    )


def task_of(source):
    """The `Task` of a run directory or `.keras` file: the one its
    metadata names; a bare `.keras` file's by its input rank (the model
    is loaded to read it)."""
    _, meta_path = _metadata.resolve_model_path(source)
    if meta_path:
        return get_task(_metadata.ModelMetadata.load(meta_path).task)
    _, meta = load_model_and_metadata(source)
    return get_task(meta.task)


def takes(name, predict_input):
    """True when `name` is a registered task whose models take `predict_input`
    (`"images"`, or `"text"`: `kerascnn predict` tags sentences)."""
    return name in _TASKS and _TASKS[name].predict_input == predict_input


def require(metadata, *, predict_input=None, picture=None, what):
    """Raises one line unless `metadata`'s model takes `predict_input` / draws
    `picture`; `what` says what the caller does ("predict classifies
    images")."""
    task = get_task(metadata.task)
    if (predict_input is None or task.predict_input == predict_input) and (
        picture is None or picture in task.pictures
    ):
        return task
    kind = task.description
    article = "an" if kind[:1] in "aeiou" else "a"
    raise KerasCNNError(
        f"{what}; {metadata.model!r} is {article} {kind} model."
    )
