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
        name: the name models (`register_model(task=...)`) and metadata
            (`ModelMetadata.task`) use.
        input_rank: rank of one example's input (3 for `(H, W, C)`
            images, 1 for token ids): what a bare Keras file with no
            metadata is recognized by.
        inputs: what `kerascnn predict` feeds it: `"images"` or `"text"`.
        consumes: the `DatasetInfo.kind` it trains on: `"images"` or
            `"tagged_text"` (`fit` checks the data set's against it).
        checkpoint_monitor: the epoch-log value that picks
            `checkpoints/best.keras`.
        checkpoint_mode: `"max"` when a higher `checkpoint_monitor` is
            better, `"min"` when lower is (a loss).
        pictures: the `kerascnn visualize` pictures that apply.
        big_batch_validation: per-epoch validation may run in batches
            larger than training's (fixed-shape inputs only).
        example_noun: what an export says it verified on (`"examples"`,
            `"sentences"`).
        macs_note: what the model card's MAC count is per, or `None`.
    """

    name = None
    input_rank = None
    inputs = "images"
    consumes = "images"
    checkpoint_monitor = "val_accuracy"
    checkpoint_mode = "max"
    pictures = frozenset({"curves"})
    big_batch_validation = False
    example_noun = "examples"
    macs_note = None

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

    # --- Export (defaults: a softmax classifier on images) ---

    def add_serving_signatures(self, archive, model, meta):
        """Adds the SavedModel's signatures to `archive` (a
        `keras.export.ExportArchive`); `metadata` is added by export."""
        from kerascnn.export.saved_model import add_image_signatures

        add_image_signatures(archive, model, meta)

    def verification_examples(self, meta, count, data_dir):
        """`(x, y, split)`: up to `count` labelled examples an export is
        verified on, and the split they came from."""
        from kerascnn.export.examples import load_test_examples

        return load_test_examples(meta, count, data_dir)

    def synthetic_inputs(self, model, meta, count):
        """`count` random valid model inputs (no test data to read)."""
        from kerascnn.export.examples import random_pixels

        return random_pixels(model, meta, count)

    def compared_outputs(self, outputs):
        """`(main, second or None)`: the float arrays verification
        compares with Keras, from one runtime's outputs (an array, or a
        dict named as that runtime names them). Default: the only float
        output."""
        from kerascnn.export.verify import only_float_output

        return only_float_output(outputs), None

    def verification_scores(self, outputs, labels, inputs):
        """`{"accuracy": ...}` (and any other `ArtifactResult` field) of
        the main `outputs` of a batch of `inputs` against `labels`."""
        from kerascnn.export.verify import top1_accuracy

        return {"accuracy": top1_accuracy(outputs, labels)}

    def tflite_model(self, model, meta, config):
        """The `kerascnn.export.tflite.TFLiteModel` that TFLite converts
        (a fixed-shape model with its input spec and metadata)."""
        from kerascnn.export.tflite import model_as_is

        return model_as_is(model, meta, config)

    def named_input_spec(self, model):
        """The named, batch-free `tf.TensorSpec` of an ONNX file's or
        OpenVINO IR's input."""
        from kerascnn.export.named_io import image_input_spec

        return image_input_spec(model)

    def named_outputs(self, outputs, inputs, meta):
        """The ONNX/OpenVINO outputs by name (tensors), from the float32
        model's `outputs` on `inputs`."""
        from kerascnn.export.named_io import classifier_outputs

        return classifier_outputs(outputs)

    def card_input(self, meta):
        """The model card's "Input" section: `{"input", "steps", "note",
        ...}` (what a caller must feed)."""
        from kerascnn.export.model_card import image_input

        return image_input(meta)

    def card_limitations(self, meta):
        """Model card notes on what this kind of model takes."""
        from kerascnn.export.model_card import image_limitations

        return image_limitations(meta)


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


def takes(name, inputs):
    """True when `name` is a registered task whose models take `inputs`
    (`"images"`, or `"text"`: `kerascnn predict` tags sentences)."""
    return name in _TASKS and _TASKS[name].inputs == inputs


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
