"""`Task`: what one kind of model needs that another does not.

Training, evaluation, prediction, export and the pictures ask the model's
task instead of comparing task names: which value picks the best
checkpoint, the loss and metrics, extra epoch callbacks, how a split is
scored, what `predict` feeds it, which pictures apply, and what its
exports look like. A new kind of model is one package under
`kerascnn/tasks/` (or anywhere: see `tests/tasks/counting/`) holding a
`Task` subclass, registered with `register_task`.

The defaults suit a softmax classifier on one input; they call the
generic export modules (`kerascnn.export`), which never import a task:
the exporter is handed the task object. Nothing here imports TensorFlow
at import time: the CLI asks tasks questions before TensorFlow loads.
"""

import abc

from kerascnn.export import examples as _examples
from kerascnn.export import model_card as _model_card
from kerascnn.export import named_io as _named_io
from kerascnn.export import saved_model as _saved_model
from kerascnn.export import tflite as _tflite
from kerascnn.export import verify as _verify
from kerascnn.export import warmup as _warmup


class Task(abc.ABC):
    """Base class; the defaults suit a softmax classifier on one input.

    Attributes:
        name: the name models (`register_model(task=...)`) and metadata
            (`ModelMetadata.task`) use.
        consumes: the kind of data set it trains on, as
            `DatasetInfo.kind` says it: `"images"` or `"tagged_text"`;
            `fit` refuses a data set of another kind.
        input_rank: rank of one example's input (3 for `(H, W, C)`
            images, 1 for token ids): what a bare Keras file with no
            metadata is recognized by.
        predict_input: what `kerascnn predict` feeds it: `"images"` or
            `"text"`.
        checkpoint_monitor: the epoch-log value that picks
            `checkpoints/best.keras`.
        checkpoint_mode: `"max"` when a higher `checkpoint_monitor` is
            better, `"min"` when lower is (a loss).
        pictures: the `kerascnn visualize` pictures that apply.
        big_batch_validation: per-epoch validation may run in batches
            larger than training's (fixed-shape inputs only).
        test_time_flips: `evaluate(..., tta=True)` (mirror-image
            test-time augmentation) applies.
        example_noun: what an export says it verified on (`"examples"`,
            `"sentences"`).
        macs_note: what the model card's MAC count is per, or `None`.
    """

    name = None
    consumes = "images"
    input_rank = None
    predict_input = "images"
    checkpoint_monitor = "val_accuracy"
    checkpoint_mode = "max"
    pictures = frozenset({"curves"})
    big_batch_validation = False
    test_time_flips = False
    example_noun = "examples"
    macs_note = None

    @property
    def description(self):
        """`"image classification"`: the name in words."""
        return self.name.replace("_", " ")

    # --- Training ---

    def load_training_data(self, config, strategy=None):
        """`(train dataset, validation dataset, train DatasetInfo)` of a
        task that makes its own data, or `None` (the default): `fit`
        reads the recipe's data set (`kerascnn.training_data.load_data`)."""
        return None

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
        """Metrics of `model` on `split` of `dataset`; must include
        `"accuracy"`.

        Args:
            data_dir: data root.
            split: the split to score.
            limit: score at most this many examples.
            batch_size: examples per model call.
            validation_split: the held-out fraction of an image folder
                without a test split (the run's own).
            progress: `total -> update(n)`, told how far scoring got.
            skip_bad: skip undecodable image files instead of stopping.
            tta: also score mirror-image test-time augmentation (only
                where `test_time_flips`; the caller checks).
        """

    # --- Export (defaults: a softmax classifier on images) ---

    def add_serving_signatures(self, archive, model, meta):
        """Adds the SavedModel's signatures to `archive` (a
        `keras.export.ExportArchive`); `metadata` is added by export."""
        _saved_model.add_image_signatures(archive, model, meta)

    def verification_examples(self, meta, count, data_dir, skip_bad=False):
        """`(x, y, split)`: up to `count` labelled examples an export is
        verified on, and the split they came from; `skip_bad` skips image
        files that cannot be decoded instead of stopping (`--skip-bad`)."""
        return _examples.load_test_examples(meta, count, data_dir, skip_bad)

    def synthetic_inputs(self, model, meta, count):
        """`count` random valid model inputs (no test data to read)."""
        return _examples.random_pixels(model, meta, count)

    def compared_outputs(self, outputs):
        """`(main, second or None)`: the float arrays verification
        compares with Keras, from one runtime's outputs (an array, or a
        dict named as that runtime names them). Default: the only float
        output."""
        return _verify.only_float_output(outputs), None

    def verification_scores(self, outputs, labels, inputs):
        """`{"accuracy": ...}` (and any other `ArtifactResult` field) of
        the main `outputs` of a batch of `inputs` against `labels`."""
        return {"accuracy": _verify.top1_accuracy(outputs, labels)}

    def tflite_model(self, model, meta, config):
        """The `kerascnn.export.tflite.TFLiteModel` that TFLite converts
        (a fixed-shape model with its input spec and metadata)."""
        return _tflite.model_as_is(model, meta, config)

    def named_input_spec(self, model):
        """The named, batch-free `tf.TensorSpec` of an ONNX file's or
        OpenVINO IR's input."""
        return _named_io.image_input_spec(model)

    def named_outputs(self, outputs, inputs, meta):
        """The ONNX/OpenVINO outputs by name (tensors), from the float32
        model's `outputs` on `inputs`."""
        return _named_io.classifier_outputs(outputs)

    def warmup_values(self, key, kind, x, meta):
        """The warm-up request's array for a signature input called `key`
        of `kind` (`"float"`, `"int"` or `"string"`), made from the
        verification examples `x`; `None` for an input the task does not
        know (that signature gets no warm-up request)."""
        return _warmup.image_values(key, kind, x, meta)

    def card_input(self, meta):
        """The model card's "Input" section: `{"input", "steps", "note",
        ...}` (what a caller must feed)."""
        return _model_card.image_input(meta)

    def card_limitations(self, meta):
        """Model card notes on what this kind of model takes."""
        return _model_card.image_limitations(meta)
