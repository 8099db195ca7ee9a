"""The export pipeline, top to bottom: settings -> model -> examples ->
convert -> verify in the artifact's own runtime -> place atomically ->
model card.

`export()` validates the `ExportConfig` (before loading anything), loads
the model, takes its task from the caller (a `kerascnn.tasks.Task`: what
differs per kind of model, from the signatures to how verification
scores; this package never looks one up), reads the examples once
(`examples.ExportData`), and calls the exporter of the format. Each
exporter reads as the steps it takes: convert, stage the artifact (bytes
in memory, or a hidden folder beside its target), verify the staged
artifact in its own runtime, place it (an atomic rename or write), and
return an `ExportResult` of what was placed. A failed verification raises
before anything is placed.
"""

import dataclasses
import functools
import json

from kerascnn import metadata as _metadata
from kerascnn.errors import ExportError
from kerascnn.export import layout as _layout
from kerascnn.export import model_card as _model_card
from kerascnn.export import optional as _optional
from kerascnn.export import saved_model as _saved_model
from kerascnn.export import supersede as _supersede
from kerascnn.export import tflite as _tflite
from kerascnn.export import verify as _verify
from kerascnn.export import warmup as _warmup
from kerascnn.export.config import (
    ExportConfig,
    check_name,
)
from kerascnn.export.examples import ExportData


@dataclasses.dataclass
class ExportResult:
    """What `export` wrote and how it verified.

    Attributes:
        format: `"saved_model"`, `"tflite"`, `"onnx"` or `"openvino"`.
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
    if config.format in _optional.PACKAGES:  # fail before loading anything
        _optional.require(config.format)
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
    result = _EXPORTERS[config.format](model, meta, config, name, data)
    if config.model_card and result.written:
        result.card_path = _model_card.update(
            source, model, meta, config, result, task
        )
    return result


def _verified(model, task, examples, run, label, size_bytes, **limits):
    """Compares the staged artifact's `run` with Keras on `examples` and
    raises `ExportError` past `limits` (`tolerance`, `max_accuracy_drop`)."""
    report = _verify.compare(
        model,
        run,
        examples.x,
        examples.y,
        label,
        size_bytes,
        task=task,
        verified_on=examples.description,
    )
    return _verify.check(report, **limits)


def _export_saved_model(model, meta, config, name, data):
    model_dir = config.model_dir(name)
    _layout.check_same_meaning(model_dir, meta.to_dict(), config.force)
    meta = _supersede.with_fingerprint(meta, model)
    previous = _supersede.newest(model_dir)
    if not config.version and _supersede.identical(previous, meta.to_dict()):
        return _identical_result(previous, name)
    version = config.version or _saved_model.next_version(model_dir)
    path = _layout.check_target(
        _layout.version_path(model_dir, version), config.overwrite
    )
    # Read before writing anything: missing test data fails fast.
    examples = data.verification(
        None if config.verify else _warmup.WARMUP_EXAMPLES,
        warm_up_only=not config.verify,
    )
    report = None
    with _saved_model.staged_folder(path, config.overwrite) as staged:
        written = _saved_model.write_saved_model(model, meta, staged, data.task)
        _warmup.write_warmup_requests(
            written, name, meta, examples.x, data.task
        )
        if config.verify:
            report = _verified(
                model,
                data.task,
                examples,
                _verify.saved_model_runner(written),
                "saved_model",
                _verify.disk_size(written),
                tolerance=_verify.SAVED_MODEL_TOLERANCE,
            )
            meta = _record_verified(meta, staged, report, examples)
    return ExportResult(
        "saved_model",
        path,
        name,
        version,
        size_bytes=_verify.disk_size(path),
        metadata=meta.to_dict(),
        verification=report,
        note=_supersede.worse_note(
            previous, (meta.extra or {}).get(_supersede.VERIFIED_KEY), version
        ),
        **_verified_on(examples if config.verify else None),
    )


def _record_verified(meta, staged, report, examples):
    """Adds the verified accuracy to the staged version's metadata."""
    entry = _supersede.verified(report, examples.description)
    if entry is None:
        return meta
    meta = dataclasses.replace(
        meta, extra=dict(meta.extra or {}, **{_supersede.VERIFIED_KEY: entry})
    )
    with open(_layout.metadata_path(staged), "w") as f:
        json.dump(meta.to_dict(), f, indent=2, sort_keys=True)
    return meta


def _identical_result(previous, name):
    return ExportResult(
        "saved_model",
        previous.path,
        name,
        previous.version,
        size_bytes=_verify.disk_size(previous.path),
        metadata=previous.meta,
        note=(
            f"the same weights and metadata as version {previous.version} "
            f"({previous.path}): nothing new written (an export with "
            "--version N writes it anyway)."
        ),
        written=False,
    )


def _export_tflite(model, meta, config, name, data):
    path = _layout.check_target(config.tflite_path(name), config.overwrite)
    target = data.task.tflite_model(model, meta, config)
    examples = (
        data.verification(length=target.length) if config.verify else None
    )
    calibration = (
        data.calibration(target.length) if config.quantize == "int8" else None
    )
    convert = functools.partial(
        _tflite.convert,
        target.model,
        config.quantize,
        representative_data=None if calibration is None else calibration.x,
        int8_io=config.int8_io,
        allow_flex=config.allow_flex,
        input_shape=target.input_shape,
        input_dtype=target.input_dtype,
        input_name=target.input_name,
    )
    label = (
        "tflite" if config.quantize == "none" else f"tflite-{config.quantize}"
    )

    def compare(tflite_bytes, **limits):
        run = _verify.tflite_runner(tflite_bytes)
        size = len(tflite_bytes)
        return _verified(model, data.task, examples, run, label, size, **limits)

    granularity = None
    if config.quantize == "int8":
        granularity = _resolve_granularity(config, compare, convert)
    metadata = dict(target.metadata)
    metadata["tflite"] = _tflite_metadata(
        config, target.input_shape or model.input_shape[1:], granularity
    )
    if calibration is not None:
        metadata["tflite"]["calibrated_on"] = calibration.description
    tflite_bytes = _tflite.embed_metadata(
        convert(per_channel=granularity != "per_tensor"), metadata
    )
    report = None
    if config.verify and config.quantize == "none":
        report = compare(tflite_bytes, tolerance=_verify.TFLITE_FLOAT_TOLERANCE)
    elif config.verify:
        report = compare(
            tflite_bytes, max_accuracy_drop=config.max_accuracy_drop
        )
    _layout.write_file_with_sidecar(
        path, tflite_bytes, metadata, config.overwrite
    )
    return ExportResult(
        "tflite",
        path,
        name,
        quantize=config.quantize,
        size_bytes=_verify.disk_size(path),
        metadata=metadata,
        verification=report,
        calibrated_on=None if calibration is None else calibration.description,
        **_verified_on(examples),
    )


def _portable_metadata(meta, config, named, **details):
    """The metadata an ONNX file or OpenVINO IR carries."""
    metadata = meta.to_dict()
    metadata[config.format] = {
        **named.describe(),
        "dynamic_batch": True,
        **details,
    }
    return metadata


def _export_onnx(model, meta, config, name, data):
    """ONNX of the float32 model (`named_io.float32_model`), verified
    against it like a SavedModel (1e-4)."""
    from kerascnn.export import named_io
    from kerascnn.export import onnx as _onnx

    model = named_io.float32_model(model)
    path = _layout.check_target(config.artifact_path(name), config.overwrite)
    examples = data.verification() if config.verify else None
    named = named_io.wrap(model, data.task, meta)
    onnx_bytes = _onnx.convert(named)
    opset = _onnx.opset_of(onnx_bytes)
    metadata = _portable_metadata(meta, config, named, opset=opset)
    onnx_bytes = _onnx.embed_metadata(onnx_bytes, metadata)
    report = None
    if config.verify:
        report = _verified(
            model,
            data.task,
            examples,
            _verify.onnx_runner(onnx_bytes),
            "onnx",
            len(onnx_bytes),
            tolerance=_verify.SAVED_MODEL_TOLERANCE,
        )
    _layout.write_file_with_sidecar(
        path, onnx_bytes, metadata, config.overwrite
    )
    return ExportResult(
        "onnx",
        path,
        name,
        size_bytes=_verify.disk_size(path),
        metadata=metadata,
        verification=report,
        opset=opset,
        **_verified_on(examples),
    )


def _export_openvino(model, meta, config, name, data):
    """An OpenVINO IR of the float32 model, verified like ONNX."""
    from kerascnn.export import named_io
    from kerascnn.export import openvino as _openvino

    model = named_io.float32_model(model)
    folder = _layout.check_target(config.artifact_path(name), config.overwrite)
    examples = data.verification() if config.verify else None
    named = named_io.wrap(model, data.task, meta)
    ov_model = _openvino.convert(named)
    metadata = _portable_metadata(
        meta, config, named, file=f"{name}.xml", inference_precision="f32"
    )
    report = None
    with _saved_model.staged_folder(folder, config.overwrite) as staged:
        xml = _openvino.write_ir(ov_model, metadata, staged, name)
        if config.verify:
            report = _verified(
                model,
                data.task,
                examples,
                _verify.openvino_runner(xml),
                "openvino",
                _openvino.folder_size(staged),
                tolerance=_verify.SAVED_MODEL_TOLERANCE,
            )
    return ExportResult(
        "openvino",
        _openvino.xml_path(folder, name),
        name,
        size_bytes=_openvino.folder_size(folder),
        metadata=metadata,
        verification=report,
        **_verified_on(examples),
    )


_EXPORTERS = {
    "saved_model": _export_saved_model,
    "tflite": _export_tflite,
    "onnx": _export_onnx,
    "openvino": _export_openvino,
}


def _tflite_metadata(config, input_shape, granularity):
    """The `tflite` entry of a `.tflite` file's metadata."""
    return {
        "quantize": config.quantize,
        "io": "int8" if config.int8_io else "float",
        "input_shape": [1, *input_shape],
        "builtin_ops_only": not config.allow_flex,
        "int8_granularity": granularity,
    }


def _resolve_granularity(config, compare, convert):
    """Picks int8 weight-scale granularity; `auto` tries per tensor first.

    Per-tensor scales make the smallest file (ResNet-20: 0.263x the float
    model instead of 0.280x) but can cost accuracy on layers whose
    channels have very different ranges, so `auto` keeps them only when
    the verification examples show no more than the allowed drop.
    """
    if config.int8_granularity != "auto":
        return config.int8_granularity
    if not config.verify:
        return "per_channel"
    report = compare(convert(per_channel=False))
    drop = report.accuracy_drop
    limit = config.max_accuracy_drop or 0.0
    ok = drop is not None and drop <= limit  # no labels: stay safe
    return "per_tensor" if ok else "per_channel"
