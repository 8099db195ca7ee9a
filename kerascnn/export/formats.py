"""The export formats, one registry: every list of format names comes here.

    >>> from kerascnn.export import formats
    >>> formats.format_names()
    ('saved_model', 'tflite', 'onnx', 'openvino')
    >>> formats.get_format("onnx").packages
    ('onnx', 'tf2onnx', 'onnxruntime')

Each format is one `ExportFormat`: its name, the optional packages it
needs, where it goes in the TF Serving layout, how it converts a model,
how its own runtime runs the result for verification, its quantization
modes and how `kerascnn inspect` reads it back. The exporter's
stage -> verify -> place driver (`kerascnn.export.exporter`), the CLI's
`--format`/`--quantize` choices, `ExportConfig.validate`, the model
card's package versions and `inspect`'s dispatch all read this registry,
so a format registered here is a format everywhere.

The four built-in formats register when `kerascnn.export` is imported
(`kerascnn/export/builtin_formats.py`). This module imports nothing of
kerascnn but `errors` and `validation`, so every other export module may
use it.
"""

import dataclasses
import importlib
import typing

from kerascnn import validation as v
from kerascnn.errors import ExportError

# `ExportFormat.placement`: where the artifact goes under <base_dir>/<name>/.
VERSION = "version"  # a numbered version folder TF Serving loads
FILE = "file"  # one file beside the versions, with a `<file>.json` sidecar
FOLDER = "folder"  # a folder beside the versions, moved in by one rename


@dataclasses.dataclass
class ExportJob:
    """One export of one format, as the format's `prepare` plans it.

    The driver converts, verifies and places what a job describes; the
    format's callables read and fill it in.

    Attributes:
        name: the model folder name under `config.base_dir`.
        model: the Keras model the artifact is verified against (ONNX and
            OpenVINO: the float32 twin).
        meta: the model's `ModelMetadata`.
        config: the validated `ExportConfig`.
        task: the model's task object (`kerascnn.tasks`), passed in by the
            caller: what differs per kind of model.
        path: the target: the file to write, or the folder a staged
            folder is renamed to.
        examples: the `examples.Examples` to verify on (and, for the
            SavedModel, to warm up with), or `None`.
        label: the row name of the verification table, e.g.
            `"tflite-int8"`.
        limits: `verify.check` keywords: `tolerance=` or
            `max_accuracy_drop=`.
        metadata: the metadata dict the artifact carries (set by
            `prepare` or `convert`).
        result_path: what `ExportResult.path` names; defaults to `path`
            (OpenVINO: the `.xml` inside the folder).
        fields: further `ExportResult` fields (`version`, `quantize`,
            `opset`, `calibrated_on`, `note`).
        unchanged: `True` when there is nothing new to write (the newest
            SavedModel version is identical); `path` names that version.
        state: anything else a format keeps between its steps.
    """

    name: str
    model: object
    meta: object
    config: object
    task: object
    path: str = None
    examples: object = None
    label: str = None
    limits: dict = dataclasses.field(default_factory=dict)
    metadata: dict = None
    result_path: str = None
    fields: dict = dataclasses.field(default_factory=dict)
    unchanged: bool = False
    state: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ExportFormat:
    """Everything kerascnn knows about one export format.

    Attributes:
        name: the `--format` value, e.g. `"onnx"`.
        title: the name people use, e.g. `"OpenVINO IR"`.
        placement: `VERSION`, `FILE` or `FOLDER` (see the constants).
        default_path: `(model_dir, name, quantize) -> path` of the
            artifact when `output` is not given (not used for `VERSION`).
        artifact: what it is on disk, in words (`"a .tflite file"`).
        prepare: `(job, data) -> None`: fills in the `ExportJob` (target
            path, examples, label, limits) before anything is converted;
            `data` is the `examples.ExportData` to read examples from.
        convert: `(job, check, folder) -> artifact`: the bytes of a `FILE`
            format (`folder` is `None`), or the path a runtime loads,
            written into the staged `folder` (`VERSION`, `FOLDER`).
            Sets `job.metadata`. `check(artifact, **limits)` verifies a
            candidate and returns its `verify.VerifyReport` (TFLite tries
            per-tensor int8 scales with it).
        runner: `(artifact) -> run(x)`: the artifact in its own runtime,
            for verification.
        size: `(path) -> int`: bytes on disk of the artifact at `path`
            (`convert`'s path, or `job.result_path`).
        inspect: `(path) -> dict` for `kerascnn inspect`.
        claims: `(path) -> bool`: whether `inspect` should read `path` as
            this format.
        quantize_modes: the `--quantize` values it accepts; `("none",)`
            for a format without quantization.
        extra: the pip extra that installs its optional packages
            (`pip install 'kerascnn[<extra>]'`), or `None`.
        requires: modules it imports that a plain install lacks, checked
            (in order) before any model is loaded.
        packages: distributions whose versions the model card records.
        finish: optional `(job, folder, report) -> None` run after
            verification (`report` is `None` without it) and before
            placing; `folder` is the staged folder (`None` for `FILE`).
            The SavedModel records its verified accuracy there.
    """

    name: str
    title: str
    artifact: str
    placement: str
    prepare: typing.Callable
    convert: typing.Callable
    runner: typing.Callable
    size: typing.Callable
    inspect: typing.Callable
    claims: typing.Callable
    default_path: typing.Callable = None
    quantize_modes: tuple = ("none",)
    extra: str = None
    requires: tuple = ()
    packages: tuple = ()
    finish: typing.Callable = None

    def __post_init__(self):
        if self.placement not in (VERSION, FILE, FOLDER):
            raise ValueError(
                "`placement` must be one of "
                f"{(VERSION, FILE, FOLDER)}. Received: "
                f"placement={self.placement!r}"
            )
        if self.placement != VERSION and self.default_path is None:
            raise ValueError(
                f"Format {self.name!r} is written beside the versions and "
                "needs a `default_path`. Received: default_path=None"
            )
        if "none" not in self.quantize_modes:
            raise ValueError(
                "`quantize_modes` must include 'none'. Received: "
                f"quantize_modes={self.quantize_modes!r}"
            )

    def require(self):
        """Imports `requires`; a missing one is one `ExportError` line
        naming the extra to install.

        Returns:
            `{module name: module}`.
        """
        modules = {}
        for module in self.requires:
            try:
                modules[module] = importlib.import_module(module)
            except ImportError:
                raise ExportError(
                    f"{self.name} export needs the optional package "
                    f"'{module}', which is not installed; install it with: "
                    f"pip install 'kerascnn[{self.extra}]'"
                ) from None
        return modules


_FORMATS = {}


def register_format(export_format):
    """Adds `export_format` to the registry; returns it.

    Raises:
        ValueError: a format of that name is already registered.
    """
    if export_format.name in _FORMATS:
        raise ValueError(
            f"Export format {export_format.name!r} is already registered."
        )
    _FORMATS[export_format.name] = export_format
    return export_format


def unregister_format(name):
    """Removes a registered format (a test's toy format); returns it."""
    return _FORMATS.pop(name)


def get_format(name):
    """The registered `ExportFormat` called `name`.

    Raises:
        ExportError: no such format (one line naming the choices).
    """
    v.check_choice("format", name, format_names(), error=ExportError)
    return _FORMATS[name]


def all_formats():
    """Every registered `ExportFormat`, in registration order."""
    return tuple(_FORMATS.values())


def format_names():
    """The `--format` choices, in registration order."""
    return tuple(_FORMATS)


def quantize_modes():
    """Every format's quantization modes (the `--quantize` choices),
    `"none"` first."""
    modes = {"none": None}
    for export_format in _FORMATS.values():
        modes.update(dict.fromkeys(export_format.quantize_modes))
    return tuple(modes)
