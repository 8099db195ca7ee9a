"""ONNX export through Keras' own exporter (`model.export(format="onnx")`).

Keras traces the model into a TensorFlow function and `tf2onnx` converts
it; kerascnn converts the `named_io` wrapper, so the file's tensors are
`images` -> `probabilities`, `class_ids` (the tagger: `token_ids` ->
`tag_probabilities`, `tag_ids`, `intent_probabilities`, `intent_ids`),
with a free batch axis, at opset `OPSET`. The LRN layer lowers to ONNX's
own `LRN` operator, ResNet's zero-padding shortcut to `Pad`, the tagger's
masked LSTMs and its Viterbi decoding to ONNX `Loop`s.

The file is `<base_dir>/<name>/<name>.onnx`, beside the SavedModel
versions. kerascnn's metadata travels inside it (`metadata_props` entry
`kerascnn_metadata`, JSON) and as a sidecar `<file>.json`. Needs
`pip install 'kerascnn[onnx]'` (onnx, tf2onnx, onnxruntime).
"""

import json
import os
import tempfile
import warnings

from kerascnn.errors import ExportError

OPSET = 17
METADATA_KEY = "kerascnn_metadata"


def convert(named, opset=OPSET):
    """A `named_io.NamedModel` as ONNX bytes (not yet carrying kerascnn
    metadata)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tf2onnx's numpy notes
                named.model.export(
                    path,
                    format="onnx",
                    input_signature=[named.spec],
                    opset_version=opset,
                    verbose=False,
                )
            with open(path, "rb") as f:
                return f.read()
        except Exception as e:  # tf2onnx raises many kinds
            text = str(e).strip()
            first = text.splitlines()[0] if text else ""
            raise ExportError(
                f"ONNX conversion failed: {type(e).__name__}: {first}"
            ) from None


def _load(onnx_bytes):
    """The `ModelProto` of ONNX bytes; `ExportError` if they are corrupt."""
    import onnx

    try:
        return onnx.load_from_string(onnx_bytes)
    except Exception as e:  # DecodeError: a truncated or corrupt file
        raise ExportError(
            f"Verification failed: the ONNX file cannot be read "
            f"({type(e).__name__}: {e}); nothing was written."
        ) from None


def embed_metadata(onnx_bytes, metadata):
    """Adds (or replaces) the `kerascnn_metadata` entry of `metadata_props`."""
    proto = _load(onnx_bytes)
    kept = [p for p in proto.metadata_props if p.key != METADATA_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entry = proto.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(metadata, sort_keys=True)
    proto.producer_name = "kerascnn (keras + tf2onnx)"
    return proto.SerializeToString()


def read_metadata(onnx_bytes):
    """kerascnn's metadata dict from ONNX bytes, or `None`."""
    proto = _load(onnx_bytes)
    for prop in proto.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    return None


def opset_of(onnx_bytes):
    """The default-domain opset version of ONNX bytes."""
    proto = _load(onnx_bytes)
    return next(
        (o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
        None,
    )
