"""The export pipeline, top to bottom: settings -> model -> examples ->
convert -> verify in the artifact's own runtime -> place atomically ->
model card.

`export()` validates the `ExportConfig` (before loading anything), loads
the model, reads the examples once (`examples.ExportData`), and calls the
exporter of the format. Each exporter converts, hands the writer a
verification step that runs on the staged artifact, and returns an
`ExportResult` built from what it wrote; the writer moves the artifact
into place only after that step passed.
"""

import dataclasses
import functools
import os

from kerascnn.errors import ExportError
from kerascnn.export import layout as _layout
from kerascnn.export import model_card as _model_card
from kerascnn.export import optional as _optional
from kerascnn.export import saved_model as _saved_model
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
    source, *, config=None, examples=None, calibration_data=None, **settings
):
    """Exports a run directory or `.keras` file; verifies; writes atomically.

        >>> export("runs/lenet", format="tflite", quantize="int8")
        >>> export("runs/lenet", config=ExportConfig(format="tflite"))

    Args:
        source: run directory (`model.keras` + `metadata.json`) or a
            `.keras` file.
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
        ExportError: bad settings, an existing target, test data that
            cannot be read (unless `allow_synthetic=True`), a failed
            conversion or a failed verification. Nothing is left behind.
    """
    from kerascnn.metadata import load_model_and_metadata

    config = ExportConfig.from_settings(config, **settings)
    if config.format in _optional.PACKAGES:  # fail before loading anything
        _optional.require(config.format)
    model, meta = load_model_and_metadata(source)
    name = check_name(config.name or meta.model)
    data = ExportData(
        model,
        meta,
        config,
        _saved_model.is_tagger(model, meta),
        examples,
        calibration_data,
    )
    result = _EXPORTERS[config.format](model, meta, config, name, data)
    if config.model_card:
        result.card_path = _model_card.update(
            source, model, meta, config, result
        )
    return result


def _export_saved_model(model, meta, config, name, data):
    model_dir = config.model_dir(name)
    _layout.check_same_meaning(model_dir, meta.to_dict(), config.force)
    version = config.version or _saved_model.next_version(model_dir)
    path = _layout.check_target(
        _layout.version_path(model_dir, version), config.overwrite
    )
    # Read before writing anything: missing test data fails fast.
    examples = data.verification(
        None if config.verify else _warmup.WARMUP_EXAMPLES,
        warm_up_only=not config.verify,
    )
    result = ExportResult(
        "saved_model",
        path,
        name,
        version,
        metadata=meta.to_dict(),
        **_verified_on(examples if config.verify else None),
    )

    def verify_fn(tmp):
        _warmup.write_warmup_requests(tmp, name, meta, examples.x)
        if not config.verify:
            return None
        report = _verify.compare(
            model,
            _verify.saved_model_runner(tmp),
            examples.x,
            examples.y,
            "saved_model",
            _verify.disk_size(tmp),
            verified_on=examples.description,
        )
        return _verify.check(report, _verify.SAVED_MODEL_TOLERANCE)

    result.verification = _saved_model.export_saved_model(
        model, meta, path, config.overwrite, verify_fn
    )
    result.size_bytes = _verify.disk_size(path)
    return result


def _tflite_model(model, meta, config, is_tagger):
    """`(model to convert, input spec, metadata, fixed length)`; the tagger
    at a fixed length (examples are padded to it), images at `None`."""
    metadata = meta.to_dict()
    if not is_tagger:
        if config.max_length is not None:
            raise ExportError(
                "`max_length` applies to the slot tagger only. "
                f"Received: max_length={config.max_length!r}"
            )
        return model, {}, metadata, None
    length = config.max_length or meta.max_length or _tflite.DEFAULT_MAX_LENGTH
    converted = _tflite.fixed_length_tagger(
        model,
        length,
        # In-graph decoding stays float: skipped for int8 (host decodes).
        tag_names=meta.class_names if config.quantize != "int8" else None,
    )
    spec = dict(
        input_shape=(length,), input_dtype="int32", input_name="token_ids"
    )
    metadata["max_length"] = length
    metadata["input_shape"] = [length]
    return converted, spec, metadata, length


def _export_tflite(model, meta, config, name, data):
    path = _layout.check_target(config.tflite_path(name), config.overwrite)
    converted, spec, metadata, length = _tflite_model(
        model, meta, config, data.is_tagger
    )
    examples = data.verification(length=length) if config.verify else None
    calibration = (
        data.calibration(length) if config.quantize == "int8" else None
    )
    convert = functools.partial(
        _tflite.convert,
        converted,
        config.quantize,
        representative_data=None if calibration is None else calibration.x,
        int8_io=config.int8_io,
        allow_flex=config.allow_flex,
        **spec,
    )
    label = (
        "tflite" if config.quantize == "none" else f"tflite-{config.quantize}"
    )

    def compare(tflite_bytes):
        return _verify.compare(
            model,
            _verify.tflite_runner(tflite_bytes),
            examples.x,
            examples.y,
            label,
            len(tflite_bytes),
            verified_on=examples.description,
        )

    granularity = None
    if config.quantize == "int8":
        granularity = _resolve_granularity(config, compare, convert)
    tflite_bytes = convert(per_channel=granularity != "per_tensor")
    metadata["tflite"] = _tflite_metadata(
        config, spec.get("input_shape") or model.input_shape[1:], granularity
    )
    result = ExportResult(
        "tflite",
        path,
        name,
        quantize=config.quantize,
        metadata=metadata,
        **_verified_on(examples),
    )
    if calibration is not None:
        result.calibrated_on = calibration.description
        metadata["tflite"]["calibrated_on"] = calibration.description

    def verify_fn(tflite_bytes):
        report = compare(tflite_bytes)
        if config.quantize == "none":
            return _verify.check(report, _verify.TFLITE_FLOAT_TOLERANCE)
        return _verify.check(report, max_accuracy_drop=config.max_accuracy_drop)

    result.verification = _tflite.export_tflite(
        tflite_bytes,
        metadata,
        path,
        config.overwrite,
        verify_fn if config.verify else None,
    )
    result.size_bytes = _verify.disk_size(path)
    return result


def _portable_metadata(model, meta, config, is_tagger, **details):
    """The metadata an ONNX file or OpenVINO IR carries."""
    from kerascnn.export import named_io

    metadata = meta.to_dict()
    has_intent = isinstance(model.output, dict) and "intent" in model.output
    metadata[config.format] = {
        **named_io.describe(is_tagger, has_intent),
        "dynamic_batch": True,
        **details,
    }
    return metadata


def _verify_portable(model, config, examples, runner, size_bytes):
    """Verifies an ONNX/OpenVINO artifact like a SavedModel (1e-4).

    `model` is the float32 model that was converted (a mixed-precision
    model's float32 twin, `named_io.float32_model`).
    """
    report = _verify.compare(
        model,
        runner,
        examples.x,
        examples.y,
        config.format,
        size_bytes,
        verified_on=examples.description,
    )
    return _verify.check(report, _verify.SAVED_MODEL_TOLERANCE)


def _export_onnx(model, meta, config, name, data):
    from kerascnn.export import named_io
    from kerascnn.export import onnx as _onnx

    model = named_io.float32_model(model)

    path = _layout.check_target(config.artifact_path(name), config.overwrite)
    examples = data.verification() if config.verify else None
    onnx_bytes = _onnx.convert(model, data.is_tagger, meta.class_names)
    opset = _onnx.opset_of(onnx_bytes)
    metadata = _portable_metadata(
        model, meta, config, data.is_tagger, opset=opset
    )
    result = ExportResult(
        "onnx",
        path,
        name,
        metadata=metadata,
        opset=opset,
        **_verified_on(examples),
    )

    def verify_fn(data_bytes):
        runner = _verify.onnx_runner(data_bytes)
        return _verify_portable(
            model, config, examples, runner, len(data_bytes)
        )

    result.verification = _onnx.export_onnx(
        onnx_bytes,
        metadata,
        path,
        config.overwrite,
        verify_fn if config.verify else None,
    )
    result.size_bytes = _verify.disk_size(path)
    return result


def _export_openvino(model, meta, config, name, data):
    from kerascnn.export import named_io
    from kerascnn.export import openvino as _openvino

    model = named_io.float32_model(model)

    folder = _layout.check_target(config.artifact_path(name), config.overwrite)
    examples = data.verification() if config.verify else None
    ov_model = _openvino.convert(model, data.is_tagger, meta.class_names)
    metadata = _portable_metadata(
        model,
        meta,
        config,
        data.is_tagger,
        file=f"{name}.xml",
        inference_precision="f32",
    )
    result = ExportResult(
        "openvino", folder, name, metadata=metadata, **_verified_on(examples)
    )

    def verify_fn(xml):
        runner = _verify.openvino_runner(xml)
        size = _openvino.folder_size(os.path.dirname(xml))
        return _verify_portable(model, config, examples, runner, size)

    result.verification = _openvino.export_openvino(
        ov_model,
        metadata,
        folder,
        name,
        config.overwrite,
        verify_fn if config.verify else None,
    )
    result.path = _openvino.xml_path(folder, name)
    result.size_bytes = _openvino.folder_size(folder)
    return result


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
