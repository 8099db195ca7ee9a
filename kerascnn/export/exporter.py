"""The export pipeline, top to bottom: settings -> model -> examples ->
convert -> verify in the artifact's own runtime -> place atomically ->
model card.

`export()` validates the `ExportConfig` (before loading anything), finds
the format in the registry (`formats.get_format`; a missing optional
package fails here), loads the model, takes its task from the caller (a
`kerascnn.tasks.Task`: what differs per kind of model, from the
signatures to how verification scores; this package never looks one
up), reads the examples once (`examples.ExportData`), and hands the
format object, the task and the examples to `export_with`: the one
driver every format runs through. It reads as the steps it takes: the
format prepares the job, converts into a stage (bytes in memory, or a
hidden folder beside its target), the staged artifact is verified in the
format's own runtime, then placed (an atomic write or rename), and an
`ExportResult` says what was placed. A failed verification raises before
anything is placed.
"""

import contextlib
import dataclasses

from kerascnn import metadata as _metadata
from kerascnn.errors import ExportError
from kerascnn.export import formats as _formats
from kerascnn.export import layout as _layout
from kerascnn.export import model_card as _model_card
from kerascnn.export import saved_model as _saved_model
from kerascnn.export import verify as _verify
from kerascnn.export.config import (
    ExportConfig,
    check_name,
)
from kerascnn.export.examples import ExportData


@dataclasses.dataclass
class ExportResult:
    """What `export` wrote and how it verified.

    Attributes:
        format: the format's registered name: `"saved_model"`,
            `"tflite"`, `"onnx"`, `"openvino"`, ...
        path: the version folder, the `.tflite` or `.onnx` file, or the
            OpenVINO `.xml` (inside its `openvino/` folder).
        name: model folder name under `base_dir`.
        version: SavedModel version (`None` for TFLite).
        quantize: quantization mode (`"none"` for SavedModels).
        size_bytes: size on disk.
        metadata: the metadata dict written into the artifact.
        verification: a `verify.VerifyReport`, or `None` with
            `verify=False`.
        examples: where verification examples came from: `"test"` (the
            data set's test split), `"given"` (passed in) or `"synthetic"`
            (random inputs, only with `allow_synthetic=True`: max diff
            only, no accuracy).
        verified_on: the same in words, e.g. `"mnist test split (500
            examples)"` or `"synthetic inputs (64 random examples, no
            labels)"`; `None` without verification.
        calibrated_on: int8 only: e.g. `"mnist train split (500
            examples)"`.
        opset: ONNX only: the file's opset version.
        card_path: the `MODEL_CARD.md` written beside the versions, or
            `None` (`model_card=False`).
        note: one line the user should read, e.g. that the export equals
            the newest version (nothing written) or verifies below it
            (`kerascnn.export.supersede`).
        written: `False` when nothing new was written (identical to the
            newest version, which `path` and `version` name).
    """

    format: str
    path: str
    name: str
    version: int = None
    quantize: str = "none"
    size_bytes: int = 0
    metadata: dict = dataclasses.field(default_factory=dict)
    verification: object = None
    examples: str = None
    verified_on: str = None
    calibrated_on: str = None
    opset: int = None
    card_path: str = None
    note: str = None
    written: bool = True

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["verification"] = (
            self.verification.to_dict() if self.verification else None
        )
        return d


def _verified_on(examples):
    """`ExportResult` fields that say what an export was verified on."""
    if examples is None:
        return {}
    return dict(examples=examples.source, verified_on=examples.description)


def export(
    source,
    *,
    task,
    config=None,
    examples=None,
    calibration_data=None,
    **settings,
):
    """Exports a run directory or `.keras` file; verifies; writes atomically.

        >>> task = tasks.get_task("image_classification")
        >>> export("runs/lenet", task=task, format="tflite", quantize="int8")
        >>> config = ExportConfig(format="tflite")
        >>> export("runs/lenet", task=task, config=config)

    Args:
        source: run directory (`model.keras` + `metadata.json`) or a
            `.keras` file.
        task: the model's `kerascnn.tasks.Task` (its signatures, examples,
            scores, TFLite model, named I/O and card sections); it must
            be the task the metadata names. A bare `.keras` file without
            metadata is taken to be a model of this task.
        config: an `ExportConfig`. Defaults to `ExportConfig()`.
        examples: `(x, y)` arrays of model inputs and labels to verify on,
            instead of loading the test split.
        calibration_data: model-input array to calibrate int8 on, instead
            of loading the training split.
        **settings: `ExportConfig` fields (`format`, `base_dir`, `name`,
            `version`, `overwrite`, `quantize`, `output`, `verify`, ...),
            applied over `config`.

    Returns:
        An `ExportResult`.

    Raises:
        ExportError: bad settings, a model of another task, an existing
            target, test data that cannot be read (unless
            `allow_synthetic=True`), a failed conversion or a failed
            verification. Nothing is left behind.
    """
    config = ExportConfig.from_settings(config, **settings)
    export_format = _formats.get_format(config.format)
    export_format.require()  # a missing package fails before loading
    model, meta = _metadata.load_model_and_metadata(
        source, bare_task=lambda shape: task.name
    )
    if meta.task != task.name:
        raise ExportError(
            f"{meta.model!r} is a model of task {meta.task!r}; export was "
            f"given task {task.name!r}."
        )
    name = check_name(config.name or meta.model)
    data = ExportData(model, meta, config, task, examples, calibration_data)
    job = _formats.ExportJob(name, model, meta, config, task)
    result = export_with(export_format, job, data)
    if config.model_card and result.written:
        result.card_path = _model_card.update(
            source, model, meta, config, result, task
        )
    return result


def export_with(export_format, job, data):
    """The one stage -> verify -> place driver, for every format.

    `export_format.prepare` fills in `job` (target, examples, limits);
    `convert` writes the artifact into a stage (bytes in memory for a
    `FILE` format, a hidden folder beside the target otherwise); the
    staged artifact runs in its own runtime (`runner`) and is compared
    with Keras; only then is it placed: a file written atomically with
    its sidecar, or the folder renamed into place. A failed conversion or
    verification raises before anything is placed.

    Args:
        export_format: a registered `formats.ExportFormat`.
        job: a `formats.ExportJob` with `name`, `model`, `meta`, `config`
            and `task` set.
        data: the `examples.ExportData` to read examples from.

    Returns:
        An `ExportResult`.
    """
    config = job.config
    export_format.prepare(job, data)
    if job.unchanged:
        return ExportResult(
            export_format.name,
            job.result_path or job.path,
            job.name,
            size_bytes=export_format.size(job.result_path or job.path),
            metadata=job.metadata,
            written=False,
            **job.fields,
        )

    def check(artifact, **limits):
        size = (
            len(artifact)
            if isinstance(artifact, bytes)
            else export_format.size(artifact)
        )
        report = _verify.compare(
            job.model,
            export_format.runner(artifact),
            job.examples.x,
            job.examples.y,
            job.label,
            size,
            task=job.task,
            verified_on=job.examples.description,
        )
        return _verify.check(report, **limits)

    report = None
    with _staged(export_format, job) as stage:
        stage.artifact = export_format.convert(job, check, stage.folder)
        if config.verify:
            report = check(stage.artifact, **job.limits)
        if export_format.finish is not None:
            export_format.finish(job, stage.folder, report)
    path = job.result_path or job.path
    return ExportResult(
        export_format.name,
        path,
        job.name,
        size_bytes=export_format.size(path),
        metadata=job.metadata,
        verification=report,
        **job.fields,
        **_verified_on(job.examples if config.verify else None),
    )


@dataclasses.dataclass
class _Stage:
    folder: str = None  # the hidden folder of a folder format
    artifact: object = None  # what `convert` returned


@contextlib.contextmanager
def _staged(export_format, job):
    """Yields a `_Stage`; places its artifact when the block ends, and
    leaves nothing behind when it raises."""
    overwrite = job.config.overwrite
    if export_format.placement == _formats.FILE:
        stage = _Stage()
        yield stage
        _layout.write_file_with_sidecar(
            job.path, stage.artifact, job.metadata, overwrite
        )
        return
    with _saved_model.staged_folder(job.path, overwrite) as folder:
        yield _Stage(folder=folder)
