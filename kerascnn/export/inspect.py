"""Reads an exported artifact back: signatures, tensors and our metadata.

    >>> from kerascnn.export.inspect import inspect_artifact, format_text
    >>> info = inspect_artifact("saved_models/lenet/1")
    >>> print(format_text(info))

Works on a SavedModel folder (a version folder, or a model folder whose
highest version is taken) and on a `.tflite` file. Metadata comes from
`assets/kerascnn_metadata.json` (SavedModel) or the flatbuffer entry
`kerascnn_metadata`, falling back to the sidecar `<file>.tflite.json`.
"""

import json
import os

from kerascnn.errors import ExportError
from kerascnn.export import layout
from kerascnn.export import tflite as _tflite

METADATA_KEYS = (
    "model",
    "task",
    "dataset",
    "input_shape",
    "class_names",
    "preprocessing",
    "kerascnn_version",
    "max_length",
    "tflite",
)


def inspect_saved_model(path):
    """`{"format", "path", "signatures", "metadata"}` for a SavedModel."""
    import tensorflow as tf

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


def inspect_artifact(path):
    """Dispatches on the path: a `.tflite` file or a SavedModel folder."""
    path = os.fspath(path)
    if os.path.isfile(path) and path.endswith(".tflite"):
        return inspect_tflite(path)
    if os.path.isdir(path):
        return inspect_saved_model(path)
    raise ExportError(
        f"{path!r} is not an exported model: expected a SavedModel folder "
        "or a .tflite file."
    )


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
    meta = info.get("metadata")
    if meta is None:
        lines.append("metadata: none (not exported by kerascnn?)")
    else:
        lines.append("metadata:")
        for key in METADATA_KEYS:
            if meta.get(key) not in (None, [], {}, ""):
                lines.append(f"  {key}: {json.dumps(meta[key])}")
    return "\n".join(lines)
