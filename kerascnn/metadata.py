"""What travels with a trained model: its name, classes and preprocessing.

A training run writes `metadata.json` beside `model.keras`; a bare
`model.keras` may carry a sidecar `model.keras.metadata.json`. Export copies
the metadata into the SavedModel (as an asset and as constants the
signatures return) and into the TFLite file, so a client never has to
guess class names or normalization.
"""

import dataclasses
import json
import os

from kerascnn.errors import KerasCNNError
from kerascnn.files import METADATA_FILENAME, MODEL_FILENAME, write_json
from kerascnn.lazy import LazyModule
from kerascnn.version import __version__

keras = LazyModule("keras")


@dataclasses.dataclass
class ModelMetadata:
    """Describes a trained model to export, serving and `inspect`.

    Attributes:
        model: registry name of the architecture, e.g. `"lenet"`.
        task: `"image_classification"` or `"sequence_tagging"`.
        dataset: training data set name, e.g. `"mnist"`.
        input_shape: model input shape without batch axis.
        class_names: output class names (slot tags for the tagger).
        preprocessing: `DatasetInfo.preprocessing` of the training data:
            how raw pixels become model input (scale, mean, std, channels,
            image_size).
        vocab: tagger word vocabulary (index = token id), else empty.
        intent_names: tagger intent names, else empty.
        max_length: tagger maximum sequence length, else `None`.
        kerascnn_version: version that trained the model.
        extra: free-form JSON-able details (recipe, metrics).
    """

    model: str
    task: str = "image_classification"
    dataset: str = ""
    input_shape: tuple = ()
    class_names: list = dataclasses.field(default_factory=list)
    preprocessing: dict = dataclasses.field(default_factory=dict)
    vocab: list = dataclasses.field(default_factory=list)
    intent_names: list = dataclasses.field(default_factory=list)
    max_length: int = None
    kerascnn_version: str = __version__
    extra: dict = dataclasses.field(default_factory=dict)

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, d):
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            d = {k: v for k, v in d.items() if k in fields}
        d = dict(d)
        d["input_shape"] = tuple(d.get("input_shape") or ())
        return cls(**d)

    def save(self, path):
        """Writes the metadata as JSON (atomically) to `path`."""
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path):
        try:
            with open(path) as f:
                return cls.from_dict(json.load(f))
        except (OSError, ValueError, TypeError) as e:
            raise KerasCNNError(
                f"Cannot read model metadata {path!r}: {e}"
            ) from None


def default_metadata(model, task):
    """Metadata for a bare Keras model with no sidecar: numbered classes.

    `task` is the task name; a bare file does not say it, so the caller
    decides (`kerascnn.tasks.load_model_and_metadata` asks the task
    registry which task takes inputs of the model's rank).
    """
    shape = tuple(model.input_shape[1:])
    output = model.output
    if isinstance(output, dict):
        output = output["tags"]
    num_classes = int(output.shape[-1])
    return ModelMetadata(
        model=model.name,
        task=task,
        input_shape=shape,
        class_names=[str(i) for i in range(num_classes)],
    )


def resolve_model_path(source):
    """Maps a run directory or a `.keras` file to `(model_path, meta_path)`.

    `meta_path` is `None` when no metadata file exists.
    """
    source = os.fspath(source)
    if os.path.isdir(source):
        model_path = os.path.join(source, MODEL_FILENAME)
        meta_path = os.path.join(source, METADATA_FILENAME)
        if not os.path.isfile(model_path):
            raise KerasCNNError(
                f"{source!r} is a directory without {MODEL_FILENAME}; pass a "
                "run directory written by `kerascnn fit` or a .keras file."
            )
    elif os.path.isfile(source):
        if not source.endswith(".keras"):
            raise KerasCNNError(
                f"{source!r} is not a Keras model: expected a run directory "
                "or a .keras file."
            )
        model_path = source
        meta_path = f"{source}.{METADATA_FILENAME}"
        sibling = os.path.join(os.path.dirname(source), METADATA_FILENAME)
        if not os.path.isfile(meta_path) and os.path.isfile(sibling):
            meta_path = sibling
    else:
        raise KerasCNNError(f"No such run directory or model file: {source!r}")
    return model_path, (meta_path if os.path.isfile(meta_path) else None)


def load_model_and_metadata(source, bare_task=None):
    """Loads a Keras model and its metadata from a run dir or `.keras` file.

    For inference: the model is not compiled (its training loss and
    optimizer are not needed to predict, evaluate or export, and a loss
    from the training code, such as label smoothing, need not be known).

    Args:
        source: a run directory or a `.keras` file.
        bare_task: `input shape -> task name`, asked only for a bare
            `.keras` file without metadata (which does not say its
            task). Without it such a file is refused.
    """

    import kerascnn.layers  # noqa: F401  (registers custom layers)

    model_path, meta_path = resolve_model_path(source)
    try:
        model = keras.saving.load_model(model_path, compile=False)
    except Exception as e:  # zip, h5 and config errors all land here
        raise KerasCNNError(
            f"Cannot load Keras model {model_path!r}: {e}"
        ) from None
    if meta_path:
        return model, ModelMetadata.load(meta_path)
    if bare_task is None:
        raise KerasCNNError(
            f"{model_path!r} has no metadata file, so its task is unknown; "
            "load it with kerascnn.tasks.load_model_and_metadata."
        )
    shape = tuple(model.input_shape[1:])
    return model, default_metadata(model, bare_task(shape))
