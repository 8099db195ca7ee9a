"""OpenVINO IR export through Keras' own exporter (`format="openvino"`).

Keras traces the model into a TensorFlow function and
`openvino.convert_model` converts it; kerascnn converts the `named_io`
wrapper, so the IR's tensors carry the same names as the ONNX file
(`images` -> `probabilities`, `class_ids`; the tagger `token_ids` ->
`tag_probabilities`, `tag_ids`, `intent_probabilities`, `intent_ids`)
with a free batch axis. Weights stay float32 (`openvino.save_model`
would compress them to float16 by default; `serialize` does not).

An IR is two files, so it lives in its own folder, moved into place in
one rename: `<base_dir>/<name>/openvino/<name>.xml` and `<name>.bin`.
kerascnn's metadata travels in the IR's runtime info
(`kerascnn_metadata`, JSON) and as `metadata.json` in the folder. It is
verified with `openvino.Core().compile_model(..., "CPU")` at float32
inference precision (`INFERENCE_PRECISION_HINT`), which is also what a
caller should ask for to reproduce Keras to 1e-4. Needs
`pip install 'kerascnn[openvino]'` (openvino; Keras' exporter also
imports scipy).
"""

import json
import os
import tempfile
import warnings

from kerascnn.errors import ExportError

METADATA_KEY = "kerascnn_metadata"
METADATA_FILE = "metadata.json"
CPU_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


def xml_path(folder, name):
    """The `.xml` file of the IR of model `name` in `folder`."""
    return os.path.join(folder, f"{name}.xml")


def convert(named):
    """A `named_io.NamedModel` as an `openvino.Model` (in memory)."""
    import openvino as ov

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.xml")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                named.model.export(
                    path,
                    format="openvino",
                    input_signature=[named.spec],
                    verbose=False,
                )
            ov_model = ov.Core().read_model(path)
            # read_model maps the .bin lazily: copy weights into memory
            # before the temp folder goes away.
            return ov_model.clone()
        except Exception as e:
            text = str(e).strip()
            first = text.splitlines()[0] if text else ""
            raise ExportError(
                f"OpenVINO conversion failed: {type(e).__name__}: {first}"
            ) from None


def write_ir(ov_model, metadata, folder, name):
    """Writes `<name>.xml`/`.bin` (metadata in rt_info) and the sidecar;
    returns the `.xml` path."""
    import openvino as ov

    text = json.dumps(metadata, sort_keys=True)
    ov_model.set_rt_info(text, [METADATA_KEY])
    xml = xml_path(folder, name)
    ov.serialize(ov_model, xml)
    with open(os.path.join(folder, METADATA_FILE), "w") as f:
        json.dump(metadata, f, indent=2, sort_keys=True)
    return xml


def read_metadata(xml):
    """kerascnn's metadata dict of an IR `.xml`, or `None`."""
    import openvino as ov

    model = ov.Core().read_model(xml)
    if not model.has_rt_info([METADATA_KEY]):
        return None
    return json.loads(model.get_rt_info([METADATA_KEY]).astype(str))


def compile_model(xml, num_threads=None):
    """The IR compiled for CPU at float32 precision."""
    import openvino as ov

    config = dict(CPU_CONFIG)
    if num_threads:
        config["INFERENCE_NUM_THREADS"] = int(num_threads)
    return ov.Core().compile_model(xml, "CPU", config)


def folder_size(folder):
    """Bytes of the `.xml` and `.bin` (what a runtime loads)."""
    return sum(
        os.path.getsize(os.path.join(folder, f))
        for f in os.listdir(folder)
        if f.endswith((".xml", ".bin"))
    )
