"""The SavedModel layout shared by export, inspect and serve.

    <base>/<model name>/<version>/saved_model.pb
    <base>/<model name>/<version>/assets/kerascnn_metadata.json

A version is a folder named with ASCII digits only (TensorFlow Serving
parses folder names as int64; `.tmp-*`, `v0.1` or a Unicode digit like
`²` are not versions) that holds a `saved_model.pb`. Export, `inspect`
and `serve` all pick versions with `list_versions`, so they agree.
"""

import dataclasses
import json
import os
import re

from kerascnn.errors import ExportError
from kerascnn.files import write_bytes

METADATA_ASSET = "kerascnn_metadata.json"
SAVED_MODEL_FILE = "saved_model.pb"

_VERSION = re.compile(r"[0-9]{1,18}")


def parse_version(text):
    """`text` as a version number, or `None` if it is not one.

    Only ASCII digits count: `str.isdigit` accepts `"²"`, which `int`
    then rejects.
    """
    if isinstance(text, str) and _VERSION.fullmatch(text):
        return int(text)
    return None


def version_path(model_dir, version):
    """The folder of one version: the existing folder whose name parses to
    it (`00000123/` for version 123, as TF Serving reads names), else
    `<model_dir>/<version>` (a version still to be written)."""
    existing = version_folders(model_dir, complete=False).get(version)
    return existing or os.path.join(model_dir, str(version))


def list_versions(model_dir, complete=True):
    """Version numbers under `model_dir`, ascending.

    Args:
        model_dir: a model's folder.
        complete: only folders holding a `saved_model.pb` (what a server
            can load); `False` counts every version-named folder (what an
            exporter must not overwrite). Defaults to `True`.
    """
    return sorted(version_folders(model_dir, complete))


def version_folders(model_dir, complete=True):
    """`{version: folder path}` under `model_dir`, by the folders' real names.

    As in TF Serving, a folder's name is parsed as an integer, so
    `00000123` is version 123 and is found on disk as `00000123/`. When
    two names parse to the same number (`7` and `007`), the shorter
    name (then the first in sorted order) wins.
    """
    try:
        names = sorted(os.listdir(model_dir), key=lambda n: (len(n), n))
    except OSError:
        return {}
    folders = {}
    for name in names:
        version = parse_version(name)
        path = os.path.join(model_dir, name)
        if version is None or version in folders or not os.path.isdir(path):
            continue
        if complete and not os.path.isfile(
            os.path.join(path, SAVED_MODEL_FILE)
        ):
            continue
        folders[version] = path
    return folders


def check_target(path, overwrite):
    """The one "already exists" rule of every export.

    An existing version folder or file is replaced only with
    `overwrite=True`; export checks before converting, and the writers
    again just before they move the result into place.
    """
    if os.path.exists(path) and not overwrite:
        other = "version" if os.path.isdir(path) else "--output path"
        raise ExportError(
            f"{path!r} already exists; pass overwrite=True (--overwrite) to "
            f"replace it, or choose another {other}."
        )
    return path


def write_new_file(path, data, overwrite=False):
    """Writes `data` (bytes) to `path` under the "already exists" rule,
    atomically (`kerascnn.files`)."""

    check_target(path, overwrite)
    write_bytes(path, data)


def write_file_with_sidecar(path, data, metadata, overwrite=False):
    """Writes a single-file artifact (`.tflite`, `.onnx`) and its metadata
    sidecar `<path>.json`, each atomically; returns `path`."""
    check_target(path, overwrite)
    text = json.dumps(metadata, indent=2, sort_keys=True).encode("utf-8")
    write_new_file(f"{path}.json", text, overwrite=True)
    write_new_file(path, data, overwrite=overwrite)
    return path


def _meaning(metadata):
    """What a client of a served model relies on: classes and input."""
    return {
        "task": metadata.get("task"),
        "classes": list(metadata.get("class_names") or []),
        "input": [
            None if d is None else int(d)
            for d in metadata.get("input_shape") or []
        ],
    }


def _describe_classes(classes):
    more = ", ..." if len(classes) > 4 else ""
    return f"{len(classes)} classes ({', '.join(map(str, classes[:4]))}{more})"


def _shape_text(dims):
    return "x".join("?" if d is None else str(d) for d in dims)


def _difference(served, new):
    """The first thing `new` changes about `served`, in words, or None."""
    if served["task"] != new["task"]:
        return f"a {served['task']} model, this one is a {new['task']} model"
    if served["classes"] != new["classes"]:
        return (
            f"{_describe_classes(served['classes'])}, this model has "
            f"{_describe_classes(new['classes'])}"
        )
    if served["input"] != new["input"]:
        return (
            f"input {_shape_text(served['input'])}, this model takes "
            f"{_shape_text(new['input'])}"
        )
    return None


FORCE_HINT = "or --force to add it as a new version anyway"


def check_same_meaning(model_dir, metadata, force=False, hint=FORCE_HINT):
    """Refuses a new version that would change what the model serves.

    A server switches to the newest version within seconds, so a version
    with other classes or another input shape silently changes the
    answers clients get under the same name. The newest complete version
    with kerascnn metadata is compared with `metadata` (a dict with
    `task`, `class_names`, `input_shape`). `hint` ends the message with
    how else to go on.

    Raises:
        ExportError: they differ and `force` is false.
    """
    if force:
        return
    for version in reversed(list_versions(model_dir)):
        served = read_metadata(version_path(model_dir, version))
        if served is None:
            continue
        difference = _difference(_meaning(served), _meaning(metadata))
        if difference:
            raise ExportError(
                f"{model_dir} version {version} serves {difference}; pass "
                f"--export-name NAME to export it as a new model, {hint}."
            )
        return


def is_saved_model(path):
    """True for a folder holding a `saved_model.pb`."""
    return os.path.isfile(os.path.join(path, SAVED_MODEL_FILE))


def metadata_path(version_dir):
    """Where our metadata asset lives inside a SavedModel folder."""
    return os.path.join(version_dir, "assets", METADATA_ASSET)


def read_metadata(version_dir):
    """Our metadata JSON of a SavedModel folder, or `None`.

    `None` also for SavedModels kerascnn did not write, and for an
    unreadable asset (serving must not fail on it).
    """
    path = metadata_path(version_dir)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# === Signatures ===


@dataclasses.dataclass
class Signature:
    """One callable signature of a loaded SavedModel.

    Attributes:
        name: the signature key, e.g. `"serving_default"`.
        fn: the concrete function; called with one keyword per input.
        inputs: input name -> `tf.TensorSpec`, sorted by name.
        outputs: output name -> `tf.TensorSpec`, sorted by name.
    """

    name: str
    fn: object
    inputs: dict
    outputs: dict

    @property
    def input_names(self):
        return list(self.inputs)

    @property
    def output_names(self):
        return list(self.outputs)


def signatures_of(loaded):
    """`{key: Signature}` for every signature of a `tf.saved_model.load`."""
    result = {}
    for key, fn in sorted(loaded.signatures.items()):
        inputs = fn.structured_input_signature[1]
        result[key] = Signature(
            name=key,
            fn=fn,
            inputs=dict(sorted(inputs.items())),
            outputs=dict(sorted(fn.structured_outputs.items())),
        )
    return result


def spec_shape(spec):
    """A `TensorSpec`'s shape as a list (`None` for unknown dims), or
    `None` for an unknown rank."""
    if spec.shape.rank is None:
        return None
    return [None if d is None else int(d) for d in spec.shape]


def describe_tensor(name, spec):
    """`{"name", "dtype", "shape"}`: one tensor of a signature as JSON."""
    return {"name": name, "dtype": spec.dtype.name, "shape": spec_shape(spec)}


def describe_signature(signature):
    """`{"inputs": [...], "outputs": [...]}` for `inspect` and serving."""
    return {
        "inputs": [describe_tensor(n, s) for n, s in signature.inputs.items()],
        "outputs": [
            describe_tensor(n, s) for n, s in signature.outputs.items()
        ],
    }
