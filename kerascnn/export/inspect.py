"""Reads an exported artifact back: signatures, tensors and our metadata.

    >>> from kerascnn.export.inspect import inspect_artifact, format_text
    >>> info = inspect_artifact("saved_models/lenet/1")
    >>> print(format_text(info))

Works on a SavedModel folder (a version folder, or a model folder whose
highest version is taken), a `.tflite` or `.onnx` file and an OpenVINO IR
(its `.xml`, or the folder holding it). Metadata comes from
`assets/kerascnn_metadata.json` (SavedModel), the flatbuffer entry
`kerascnn_metadata` (falling back to the sidecar `<file>.tflite.json`),
the ONNX `metadata_props` or the IR's runtime info. The model card
(`model_card.json` beside the versions) is added as `model_card`.
"""

import json
import os

from kerascnn.errors import ExportError
from kerascnn.export import formats, layout
from kerascnn.export import model_card as _model_card
from kerascnn.export import onnx as _onnx
from kerascnn.export import openvino as _openvino
from kerascnn.export import tflite as _tflite
from kerascnn.lazy import LazyModule

tf = LazyModule("tensorflow")

METADATA_KEYS = (
    "model",
    "task",
    "dataset",
    "input_shape",
    "class_names",
    "preprocessing",
    "kerascnn_version",
    "max_length",
)  # then each format's own entry (`metadata["tflite"]`, ...)


def inspect_saved_model(path):
    """`{"format", "path", "signatures", "metadata"}` for a SavedModel."""

    if not layout.is_saved_model(path):
        versions = layout.list_versions(path)
        if not versions:
            raise ExportError(
                f"{path!r} is neither a SavedModel nor a model folder with "
                "integer versions."
            )
        path = layout.version_path(path, versions[-1])
    try:
        loaded = tf.saved_model.load(path)
    except Exception as e:
        raise ExportError(f"Cannot load SavedModel {path!r}: {e}") from None
    signatures = {
        key: layout.describe_signature(sig)
        for key, sig in layout.signatures_of(loaded).items()
    }
    return {
        "format": "saved_model",
        "path": path,
        "signatures": signatures,
        "metadata": layout.read_metadata(path),
    }


def _tflite_tensor(detail):
    scales = [float(s) for s in detail["quantization_parameters"]["scales"]]
    zeros = [int(z) for z in detail["quantization_parameters"]["zero_points"]]
    quant = None
    if scales:
        quant = {
            "scale": scales[0] if len(scales) == 1 else scales,
            "zero_point": zeros[0] if len(zeros) == 1 else zeros,
        }
    return {
        "name": detail["name"],
        "dtype": detail["dtype"].__name__,
        "shape": [int(d) for d in detail["shape"]],
        "quantization": quant,
    }


def inspect_tflite(path):
    """Signatures, every tensor and the metadata of a `.tflite` file."""
    from ai_edge_litert.interpreter import Interpreter

    with open(path, "rb") as f:
        data = f.read()
    try:
        interpreter = Interpreter(model_content=data)
    except Exception as e:
        raise ExportError(f"Cannot read TFLite file {path!r}: {e}") from None
    signatures = {}
    for key in interpreter.get_signature_list():
        runner = interpreter.get_signature_runner(key)
        signatures[key] = {
            "inputs": [
                dict(_tflite_tensor(d), name=n)
                for n, d in runner.get_input_details().items()
            ],
            "outputs": [
                dict(_tflite_tensor(d), name=n)
                for n, d in runner.get_output_details().items()
            ],
        }
    tensors = [_tflite_tensor(d) for d in interpreter.get_tensor_details()]
    metadata, source = _tflite.read_metadata(data), "flatbuffer"
    if metadata is None and os.path.isfile(f"{path}.json"):
        with open(f"{path}.json") as f:
            metadata, source = json.load(f), "sidecar"
    return {
        "format": "tflite",
        "path": path,
        "size_bytes": len(data),
        "signatures": signatures,
        "tensors": tensors,
        "metadata": metadata,
        "metadata_source": source,
    }


def _onnx_tensor(value):
    import onnx

    kind = value.type.tensor_type
    dims = [
        d.dim_value if d.HasField("dim_value") else None for d in kind.shape.dim
    ]
    dtype = onnx.helper.tensor_dtype_to_np_dtype(kind.elem_type).name
    return {"name": value.name, "dtype": dtype, "shape": dims}


def inspect_onnx(path):
    """Inputs, outputs, opset and metadata of an `.onnx` file (needs the
    `[onnx]` extra: `inspect_artifact` checks it first)."""
    import onnx

    with open(path, "rb") as f:
        data = f.read()
    try:
        proto = onnx.load_from_string(data)
    except Exception as e:
        raise ExportError(f"Cannot read ONNX file {path!r}: {e}") from None
    return {
        "format": "onnx",
        "path": path,
        "size_bytes": len(data),
        "opset": _onnx.opset_of(data),
        "signatures": {
            "serving_default": {
                "inputs": [_onnx_tensor(v) for v in proto.graph.input],
                "outputs": [_onnx_tensor(v) for v in proto.graph.output],
            }
        },
        "metadata": _onnx.read_metadata(data),
    }


def _openvino_tensor(port):
    shape = port.get_partial_shape()
    dims = [d.get_length() if d.is_static else None for d in shape]
    return {
        "name": port.get_any_name(),
        "dtype": port.get_element_type().get_type_name(),
        "shape": dims,
    }


def openvino_xml(path):
    """The IR `.xml` of `path` (the file itself, or the first in the
    folder), or `None`."""
    if path.endswith(".xml"):
        return path
    found = sorted(f for f in os.listdir(path) if f.endswith(".xml"))
    return os.path.join(path, found[0]) if found else None


def inspect_openvino(path):
    """Inputs, outputs and metadata of an OpenVINO IR (`.xml` or folder;
    needs the `[openvino]` extra: `inspect_artifact` checks it first)."""
    import openvino as ov

    xml = openvino_xml(path)
    try:
        model = ov.Core().read_model(xml)
    except Exception as e:
        raise ExportError(f"Cannot read OpenVINO IR {xml!r}: {e}") from None
    return {
        "format": "openvino",
        "path": xml,
        "size_bytes": _openvino.folder_size(os.path.dirname(xml)),
        "signatures": {
            "serving_default": {
                "inputs": [_openvino_tensor(p) for p in model.inputs],
                "outputs": [_openvino_tensor(p) for p in model.outputs],
            }
        },
        "metadata": _openvino.read_metadata(xml),
    }


def _find_card(path):
    """`(card dict, MODEL_CARD.md path)` beside the artifact, or `None`."""
    here = path if os.path.isdir(path) else os.path.dirname(path)
    for folder in (here, os.path.dirname(os.path.abspath(here))):
        card = _model_card.read(folder)
        if card is not None:
            return card, os.path.join(folder, _model_card.CARD_MARKDOWN)
    return None


def _inspect_by_kind(path):
    """The first registered format that claims `path` reads it."""
    for export_format in formats.all_formats():
        if export_format.claims(path):
            export_format.require()
            return export_format.inspect(path)
    kinds = [f.artifact for f in formats.all_formats()]
    expected = f"{', '.join(kinds[:-1])} or {kinds[-1]}"
    raise ExportError(
        f"{path!r} is not an exported model: expected {expected}."
    )


def inspect_artifact(path):
    """Reads `path` with the registered format that claims it
    (`ExportFormat.claims`: a SavedModel folder, `.tflite`, `.onnx`, an
    OpenVINO IR, ...); adds the model card found beside it."""
    path = os.fspath(path)
    info = _inspect_by_kind(path)
    found = _find_card(path)
    if found is not None:
        info["model_card"], info["model_card_path"] = found
    return info


def _shape(shape):
    return (
        "?"
        if shape is None
        else "("
        + ", ".join("None" if d is None else str(d) for d in shape)
        + ")"
    )


def _tensor_line(t):
    line = f"    {t['name']}: {t['dtype']} {_shape(t['shape'])}"
    if t.get("quantization"):
        q = t["quantization"]
        line += f" scale={q['scale']} zero_point={q['zero_point']}"
    return line


def format_text(info, all_tensors=False):
    """Human-readable summary of `inspect_artifact`'s dict."""
    lines = [f"{info['format']}: {info['path']}"]
    if "size_bytes" in info:
        lines.append(f"size: {info['size_bytes']} bytes")
    for key, sig in info["signatures"].items():
        lines.append(f"signature {key!r}")
        lines.append("  inputs:")
        lines += [_tensor_line(t) for t in sig["inputs"]]
        lines.append("  outputs:")
        lines += [_tensor_line(t) for t in sig["outputs"]]
    if info.get("tensors"):
        dtypes = {}
        for t in info["tensors"]:
            dtypes[t["dtype"]] = dtypes.get(t["dtype"], 0) + 1
        lines.append(
            "tensors: "
            + ", ".join(f"{n} {d}" for d, n in sorted(dtypes.items()))
        )
        if all_tensors:
            lines += [_tensor_line(t) for t in info["tensors"]]
    if info.get("opset"):
        lines.append(f"opset: {info['opset']}")
    meta = info.get("metadata")
    if meta is None:
        lines.append("metadata: none (not exported by kerascnn?)")
    else:
        lines.append("metadata:")
        for key in (*METADATA_KEYS, *formats.format_names()):
            if meta.get(key) not in (None, [], {}, ""):
                lines.append(f"  {key}: {json.dumps(meta[key])}")
    if info.get("model_card"):
        lines += format_card(info["model_card"], info["model_card_path"])
    return "\n".join(lines)


def _percent(value):
    return "-" if value is None else f"{100 * value:.2f}%"


def format_card(card, path):
    """The model card's headline figures, a few lines for `inspect`."""
    m, d = card["model"], card["dataset"]
    macs = "-" if m.get("macs") is None else f"{m['macs']:,}"
    lines = [
        f"model card: {path}",
        f"  model: {m['name']} ({m.get('parameters', 0):,} parameters, "
        f"{macs} MACs); {m.get('reference') or 'no reference'}",
        f"  data: {d['name']} splits {json.dumps(d.get('split_sizes'))}",
    ]
    metrics = card.get("test_metrics") or {}
    shown = [
        f"{k} {metrics[k]:.4f}"
        for k in ("accuracy", "slot_f1", "intent_accuracy")
        if isinstance(metrics.get(k), float)
    ]
    if shown:
        lines.append(
            f"  test: {', '.join(shown)} "
            f"({metrics.get('num_examples', '?')} examples)"
        )
    lines.append("  exports:")
    for label, e in sorted(card["exports"].items()):
        figures = "not verified"
        if e.get("verified"):
            score = e.get("slot_f1")
            name = "span F1" if score is not None else "accuracy"
            score = e.get("accuracy") if score is None else score
            figures = (
                f"max diff {e['max_abs_diff']:.2e}, {name} "
                f"{_percent(score)} on {e.get('verified_on')}"
            )
        lines.append(
            f"    {label}: {e['path']} ({e['size_bytes']:,} bytes); {figures}"
        )
    return lines
