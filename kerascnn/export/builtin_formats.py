"""The four built-in export formats: SavedModel, TFLite, ONNX, OpenVINO.

Each section holds one format's steps and ends with its `register_format`
line; `kerascnn/export/__init__.py` imports this module, so the formats
are registered whenever `kerascnn.export` is imported. The driver that
runs the steps (prepare -> convert into a stage -> verify in the format's
own runtime -> place) is `kerascnn.export.exporter.export_with`; the
conversion itself lives in the format's module (`saved_model`, `tflite`,
`onnx`, `openvino`).
"""

import dataclasses
import functools
import json
import os

from kerascnn.export import (
    formats,
    layout,
    named_io,
    saved_model,
    supersede,
    verify,
    warmup,
)
from kerascnn.export import inspect as _inspect
from kerascnn.export import onnx as _onnx
from kerascnn.export import openvino as _openvino
from kerascnn.export import tflite as _tflite

# === SavedModel: a numbered version folder TF Serving loads ===


def _prepare_saved_model(job, data):
    config = job.config
    model_dir = config.model_dir(job.name)
    layout.check_same_meaning(model_dir, job.meta.to_dict(), config.force)
    job.meta = supersede.with_fingerprint(job.meta, job.model)
    previous = supersede.newest(model_dir)
    job.state["previous"] = previous
    if not config.version and supersede.identical(previous, job.meta.to_dict()):
        job.unchanged = True
        job.path = previous.path
        job.metadata = previous.meta
        job.fields.update(
            version=previous.version,
            note=(
                f"the same weights and metadata as version "
                f"{previous.version} ({previous.path}): nothing new written "
                "(an export with --version N writes it anyway)."
            ),
        )
        return
    version = config.version or saved_model.next_version(model_dir)
    job.fields["version"] = version
    job.path = layout.check_target(
        layout.version_path(model_dir, version), config.overwrite
    )
    # Read before writing anything: missing test data fails fast. Without
    # verification a few examples still make the warm-up requests.
    job.examples = data.verification(
        None if config.verify else warmup.WARMUP_EXAMPLES,
        warm_up_only=not config.verify,
    )
    job.label = "saved_model"
    job.limits = dict(tolerance=verify.SAVED_MODEL_TOLERANCE)


def _convert_saved_model(job, check, folder):
    written = saved_model.write_saved_model(
        job.model, job.meta, folder, job.task
    )
    warmup.write_warmup_requests(
        written, job.name, job.meta, job.examples.x, job.task
    )
    job.metadata = job.meta.to_dict()
    return written


def _finish_saved_model(job, folder, report):
    """Records the verified accuracy in the staged version's metadata
    and notes when it verifies below the newest version."""
    if report is not None:
        entry = supersede.verified(report, job.examples.description)
        if entry is not None:
            extra = dict(
                job.meta.extra or {}, **{supersede.VERIFIED_KEY: entry}
            )
            job.meta = dataclasses.replace(job.meta, extra=extra)
            with open(layout.metadata_path(folder), "w") as f:
                json.dump(job.meta.to_dict(), f, indent=2, sort_keys=True)
    job.metadata = job.meta.to_dict()
    job.fields["note"] = supersede.worse_note(
        job.state["previous"],
        (job.meta.extra or {}).get(supersede.VERIFIED_KEY),
        job.fields["version"],
    )


def _claims_saved_model(path):
    return os.path.isdir(path) and (
        layout.is_saved_model(path) or bool(layout.list_versions(path))
    )


formats.register_format(
    formats.ExportFormat(
        name="saved_model",
        title="SavedModel",
        artifact="a SavedModel folder",
        placement=formats.VERSION,
        prepare=_prepare_saved_model,
        convert=_convert_saved_model,
        finish=_finish_saved_model,
        runner=verify.saved_model_runner,
        size=verify.disk_size,
        inspect=_inspect.inspect_saved_model,
        claims=_claims_saved_model,
    )
)


# === TFLite: one file beside the versions, optionally quantized ===


def _tflite_path(model_dir, name, quantize):
    suffix = "" if quantize == "none" else f"-{quantize}"
    return os.path.join(model_dir, f"{name}{suffix}.tflite")


def _prepare_tflite(job, data):
    config = job.config
    job.path = layout.check_target(
        config.artifact_path(job.name), config.overwrite
    )
    target = job.task.tflite_model(job.model, job.meta, config)
    job.examples = (
        data.verification(length=target.length) if config.verify else None
    )
    calibration = (
        data.calibration(target.length) if config.quantize == "int8" else None
    )
    job.state.update(target=target, calibration=calibration)
    if config.quantize == "none":
        job.label = "tflite"
        job.limits = dict(tolerance=verify.TFLITE_FLOAT_TOLERANCE)
    else:
        job.label = f"tflite-{config.quantize}"
        job.limits = dict(max_accuracy_drop=config.max_accuracy_drop)
    job.fields.update(
        quantize=config.quantize,
        calibrated_on=None if calibration is None else calibration.description,
    )


def _convert_tflite(job, check, folder):
    config, target = job.config, job.state["target"]
    calibration = job.state["calibration"]
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
    granularity = None
    if config.quantize == "int8":
        granularity = _resolve_granularity(config, check, convert)
    metadata = dict(target.metadata)
    metadata["tflite"] = _tflite_metadata(
        config, target.input_shape or job.model.input_shape[1:], granularity
    )
    if calibration is not None:
        metadata["tflite"]["calibrated_on"] = calibration.description
    job.metadata = metadata
    return _tflite.embed_metadata(
        convert(per_channel=granularity != "per_tensor"), metadata
    )


def _tflite_metadata(config, input_shape, granularity):
    """The `tflite` entry of a `.tflite` file's metadata."""
    return {
        "quantize": config.quantize,
        "io": "int8" if config.int8_io else "float",
        "input_shape": [1, *input_shape],
        "builtin_ops_only": not config.allow_flex,
        "int8_granularity": granularity,
    }


def _resolve_granularity(config, check, convert):
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
    report = check(convert(per_channel=False))
    drop = report.accuracy_drop
    limit = config.max_accuracy_drop or 0.0
    ok = drop is not None and drop <= limit  # no labels: stay safe
    return "per_tensor" if ok else "per_channel"


def _claims_file(suffix):
    def claims(path):
        return os.path.isfile(path) and path.endswith(suffix)

    return claims


formats.register_format(
    formats.ExportFormat(
        name="tflite",
        title="TFLite",
        artifact="a .tflite file",
        placement=formats.FILE,
        default_path=_tflite_path,
        prepare=_prepare_tflite,
        convert=_convert_tflite,
        runner=verify.tflite_runner,
        size=verify.disk_size,
        inspect=_inspect.inspect_tflite,
        claims=_claims_file(".tflite"),
        quantize_modes=_tflite.QUANTIZE_MODES,
        packages=("ai-edge-litert",),
    )
)


# === ONNX and OpenVINO: the float32 model with named inputs/outputs ===


def _prepare_portable(job, data):
    """ONNX and OpenVINO convert the float32 model
    (`named_io.float32_model`) and verify against it like a SavedModel."""
    config = job.config
    job.model = named_io.float32_model(job.model)
    job.path = layout.check_target(
        config.artifact_path(job.name), config.overwrite
    )
    job.examples = data.verification() if config.verify else None
    job.state["named"] = named_io.wrap(job.model, job.task, job.meta)
    job.label = config.format
    job.limits = dict(tolerance=verify.SAVED_MODEL_TOLERANCE)


def _portable_metadata(job, **details):
    """The metadata an ONNX file or OpenVINO IR carries."""
    metadata = job.meta.to_dict()
    metadata[job.config.format] = {
        **job.state["named"].describe(),
        "dynamic_batch": True,
        **details,
    }
    return metadata


def _onnx_path(model_dir, name, quantize):
    return os.path.join(model_dir, f"{name}.onnx")


def _convert_onnx(job, check, folder):
    onnx_bytes = _onnx.convert(job.state["named"])
    opset = _onnx.opset_of(onnx_bytes)
    job.fields["opset"] = opset
    job.metadata = _portable_metadata(job, opset=opset)
    return _onnx.embed_metadata(onnx_bytes, job.metadata)


formats.register_format(
    formats.ExportFormat(
        name="onnx",
        title="ONNX",
        artifact="an .onnx file",
        placement=formats.FILE,
        default_path=_onnx_path,
        prepare=_prepare_portable,
        convert=_convert_onnx,
        runner=verify.onnx_runner,
        size=verify.disk_size,
        inspect=_inspect.inspect_onnx,
        claims=_claims_file(".onnx"),
        extra="onnx",
        requires=("onnx", "tf2onnx", "onnxruntime"),
        packages=("onnx", "tf2onnx", "onnxruntime"),
    )
)


def _openvino_folder(model_dir, name, quantize):
    return os.path.join(model_dir, "openvino")


def _convert_openvino(job, check, folder):
    ov_model = _openvino.convert(job.state["named"])
    job.metadata = _portable_metadata(
        job, file=f"{job.name}.xml", inference_precision="f32"
    )
    job.result_path = _openvino.xml_path(job.path, job.name)
    return _openvino.write_ir(ov_model, job.metadata, folder, job.name)


def _openvino_size(xml):
    return _openvino.folder_size(os.path.dirname(xml))


def _claims_openvino(path):
    if os.path.isfile(path):
        return path.endswith(".xml")
    return (
        os.path.isdir(path)
        and not layout.is_saved_model(path)
        and not layout.list_versions(path)
        and _inspect.openvino_xml(path) is not None
    )


formats.register_format(
    formats.ExportFormat(
        name="openvino",
        title="OpenVINO IR",
        artifact="an OpenVINO IR (.xml)",
        placement=formats.FOLDER,
        default_path=_openvino_folder,
        prepare=_prepare_portable,
        convert=_convert_openvino,
        runner=verify.openvino_runner,
        size=_openvino_size,
        inspect=_inspect.inspect_openvino,
        claims=_claims_openvino,
        extra="openvino",
        # Keras' OpenVINO exporter imports scipy.
        requires=("openvino", "scipy"),
        packages=("openvino",),
    )
)
