"""A new SavedModel version against the one it supersedes.

TF Serving serves the largest version number, so exporting adds the
served model. Two checks keep that honest:

* an export whose weights and meaning (classes, input, preprocessing)
  equal the newest version's is not written again: the result points at
  that version (`IdenticalExport`);
* a new version whose verification accuracy is below the newest
  version's on the same examples gets a one-line `note`.

The weights' SHA-256 and the verification accuracy travel in the
version's metadata (`extra["weights_sha256"]`, `extra["verified"]`).
"""

import dataclasses
import hashlib
import os

from kerascnn.export import layout
from kerascnn.lazy import LazyModule

np = LazyModule("numpy")

WEIGHTS_KEY = "weights_sha256"
VERIFIED_KEY = "verified"
# Metadata fields whose equality makes two exports the same model.
_MEANING = ("model", "task", "input_shape", "class_names", "preprocessing")


@dataclasses.dataclass
class Newest:
    """The newest version of a model folder: number, folder, metadata."""

    version: int
    path: str
    meta: dict


def newest(model_dir):
    """The newest version with kerascnn metadata, or `None`."""
    if not os.path.isdir(model_dir):
        return None
    versions = sorted(
        (int(n) for n in os.listdir(model_dir) if n.isdigit()), reverse=True
    )
    for version in versions[:1]:
        path = os.path.join(model_dir, str(version))
        meta = layout.read_metadata(path)
        if meta is not None:
            return Newest(version, path, meta)
    return None


def weights_sha256(model):
    """SHA-256 over the model's weights (shapes, dtypes and values)."""

    digest = hashlib.sha256()
    for weight in model.get_weights():
        array = np.ascontiguousarray(weight)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def with_fingerprint(meta, model):
    """`meta` with its weights' SHA-256 in `extra`."""
    extra = dict(meta.extra or {}, **{WEIGHTS_KEY: weights_sha256(model)})
    return dataclasses.replace(meta, extra=extra)


def identical(previous, meta_dict):
    """Whether `previous` (a `Newest`) holds the same weights and
    meaning as the metadata about to be written."""
    if previous is None:
        return False
    old = previous.meta
    sha = (old.get("extra") or {}).get(WEIGHTS_KEY)
    if not sha or sha != (meta_dict.get("extra") or {}).get(WEIGHTS_KEY):
        return False
    return all(
        _jsonish(old.get(k)) == _jsonish(meta_dict.get(k)) for k in _MEANING
    )


def _jsonish(value):
    if isinstance(value, (list, tuple)):
        return [_jsonish(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonish(v) for k, v in value.items()}
    return value


def verified(report, verified_on):
    """The `extra["verified"]` entry of a verification report."""
    accuracy = getattr(getattr(report, "artifact", None), "accuracy", None)
    if accuracy is None or verified_on is None:
        return None
    return {"accuracy": float(accuracy), "on": verified_on}


def worse_note(previous, new_verified, version):
    """One line when the new version verified below `previous` on the
    same examples, else `None`."""
    if previous is None or not new_verified:
        return None
    old = (previous.meta.get("extra") or {}).get(VERIFIED_KEY) or {}
    if old.get("on") != new_verified["on"] or "accuracy" not in old:
        return None
    if new_verified["accuracy"] >= old["accuracy"]:
        return None
    return (
        f"version {version} scores {new_verified['accuracy']:.4f} on "
        f"{new_verified['on']}, below version {previous.version}'s "
        f"{old['accuracy']:.4f}; it is now the served version (TF Serving "
        f"serves the newest): remove {version} to keep serving "
        f"{previous.version}."
    )
