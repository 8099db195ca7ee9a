"""Loading one SavedModel version: load, warm up, report its state.

`load_version` loads a version folder and warms it with TF Serving's
warm-up records when the export wrote them (as TF Serving, no signature
runs at load without them: a model folder is code, and nothing of it
runs before a request asks) before the server switches to it;
`VersionState` is what `status` reports for a version, in TF Serving's
ManagerState names, with the bookkeeping of bounded load retries.
"""

import dataclasses
import gc
import logging
import os
import re
import stat
import time

import tensorflow as tf

from kerascnn.errors import ExportError
from kerascnn.export import layout, warmup
from kerascnn.serving import arrays
from kerascnn.serving.errors import BadRequest, ServingError
from kerascnn.serving.signatures import PREDICT_METHOD, run_signature

logger = logging.getLogger("kerascnn.serving")

# TF Serving's ManagerState names, as GetModelStatus reports them.
START, LOADING, AVAILABLE, UNLOADING, END = (
    "START",
    "LOADING",
    "AVAILABLE",
    "UNLOADING",
    "END",
)


@dataclasses.dataclass
class LoadedVersion:
    """One loaded, warmed SavedModel version.

    Attributes:
        name: model name.
        version: the integer version.
        path: the version folder.
        signatures: `{key: layout.Signature}`.
        metadata: our metadata JSON, or `None`.
        module: the loaded object; kept so its variables stay alive.
        signature_defs: `{key: SignatureDef proto}` as the SavedModel
            stores them (graph tensor names, method names), which is what
            TF Serving's metadata answers show.
        graph_model: a TF1 graph SavedModel (no object graph, written by
            `SavedModelBuilder`): TensorFlow, not the signature's static
            shapes, judges input shapes, as in TF Serving's sessions.
    """

    name: str
    version: int
    path: str
    signatures: dict
    metadata: dict = None
    module: object = None
    signature_defs: dict = dataclasses.field(default_factory=dict)
    graph_model: bool = False

    def check_shapes(self, signature, feeds):
        """`BadRequest` for a feed that does not fit the signature's
        shapes, except in a TF1 graph model (see `graph_model`).

        A TF2 function is traced for its declared shapes; running it on
        others can abort the process inside a kernel, so they are refused
        before they reach TensorFlow.
        """
        if not self.graph_model:
            arrays.check_shapes(signature, feeds)

    def method_name(self, key):
        """The signature's `method_name` (predict when not recorded)."""
        proto = self.signature_defs.get(key)
        return (proto.method_name if proto is not None else "") or (
            PREDICT_METHOD
        )


def read_serving_meta_graph(path):
    """The serving `MetaGraphDef` of a SavedModel folder."""
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    binary = os.path.join(path, layout.SAVED_MODEL_FILE)
    if os.path.isfile(binary):
        with open(binary, "rb") as f:
            saved_model.ParseFromString(f.read())
    else:
        with open(os.path.join(path, "saved_model.pbtxt")) as f:
            text_format.Parse(f.read(), saved_model)
    for meta_graph in saved_model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return meta_graph
    return saved_model.meta_graphs[0]


_NOISE = re.compile(
    r"^(Graph execution error:|Detected at node|<stack traces|\s|File )"
)


def error_text(error):
    """The line of an error that says what went wrong: TensorFlow's
    "Graph execution error:" headers, node stacks and `[[{{node ...}}]]`
    suffixes taken out."""
    text = getattr(error, "message", None) or str(error)
    for line in text.splitlines():
        if line.strip() and not _NOISE.match(line):
            line = re.sub(r"\s*\[\[\{\{node [^]]*\]\].*$", "", line)
            return re.sub(r"\{\{[^}]*\}\}\s*", "", line).strip()
    return type(error).__name__


def error_code_of(error):
    """TF Serving's status code name of any load error: a `ServingError`'s
    `error_code`, a TensorFlow error's own, else UNKNOWN (NOT_FOUND for a
    missing file)."""
    code = getattr(error, "error_code", None)
    if isinstance(code, str):
        return code
    return _error_code(error)


def _error_code(error):
    code = getattr(error, "error_code", None)
    if code is not None:
        names = {
            v: k
            for k, v in vars(tf.errors).items()
            if k.isupper() and isinstance(v, int)
        }
        return names.get(code, "UNKNOWN")
    return "NOT_FOUND" if isinstance(error, FileNotFoundError) else "UNKNOWN"


def freeze_heap(unloaded=True):
    """Moves every live object out of reach of Python's cyclic GC.

    A loaded SavedModel leaves hundreds of thousands of long-lived
    Python objects; without this, the full collections that the
    requests' own allocations trigger walk all of them, which cost
    more CPU per request than LeNet's call. With `unloaded`, unfreezing
    and collecting first frees the cycles of versions unloaded since the
    last freeze (a walk of every object, ~1 s with the GIL held on the
    2-core machine); after loads only, the collection walks only what
    is not frozen yet, so the event loop is not held for a full walk.
    """
    if unloaded:
        gc.unfreeze()
    gc.collect()
    gc.freeze()


def load_version(name, version, path):
    """Loads and warms one version; raises `ServingError` with a TF
    Serving error code in `.error_code` (whatever went wrong)."""

    try:
        module = tf.saved_model.load(path)
        signatures = layout.signatures_of(module)
        meta_graph = read_serving_meta_graph(path)
    except Exception as e:  # a corrupt folder must not stop the others
        error = ServingError(
            f"Cannot load SavedModel {path!r}: {error_text(e)}"
        )
        error.error_code = _error_code(e)
        raise error from None
    loaded = LoadedVersion(
        name,
        version,
        path,
        signatures,
        public_metadata(layout.read_metadata(path)),
        module,
        dict(meta_graph.signature_def),
        graph_model=not meta_graph.object_graph_def.nodes,
    )
    warm_up(loaded)
    return loaded


def replay_warmup_records(loaded):
    """Replays TF Serving's warm-up file of a version; returns its count.

    `kerascnn export` writes real requests to
    `assets.extra/tf_serving_warmup_requests`; as in TF Serving, a record
    that fails fails the load.
    """
    failures = []

    def run(signature_name, inputs):
        try:
            if signature_name not in loaded.signatures:
                raise BadRequest(f"no signature {signature_name!r}")
            signature = loaded.signatures[signature_name]
            feeds = arrays.check_arrays(signature, inputs)
            loaded.check_shapes(signature, feeds)
            run_signature(signature, feeds)
        except Exception as e:
            failures.append(e)
            raise ServingError(error_text(e)) from None

    started = time.perf_counter()
    try:
        count = warmup.replay_warmup_requests(loaded.path, run)
    except ExportError as e:
        error = ServingError(f"Cannot warm up {loaded.path!r}: {e}")
        # TF Serving reports the failing record's own status code.
        code = _error_code(failures[-1]) if failures else "UNKNOWN"
        if code == "UNKNOWN" and (
            not failures or isinstance(failures[-1], ServingError)
        ):
            code = "INVALID_ARGUMENT"
        error.error_code = code
        raise error from None
    if count:
        logger.warning(
            "Replayed %d warm-up records of %s version %d (%s) in %.2f s",
            count,
            loaded.name,
            loaded.version,
            warmup.WARMUP_FILE,
            time.perf_counter() - started,
        )
    return count


def warm_up(loaded):
    """Replays the version's warm-up records, so the first request is not
    slow; without records nothing runs (TF Serving's "No warmup data
    file found"): a signature may do anything a TensorFlow graph can,
    and none runs before a request asks for it."""
    if not replay_warmup_records(loaded):
        logger.info(
            "No warm-up records for %s version %d: no signature ran at load",
            loaded.name,
            loaded.version,
        )


# === Trust ===

# An absolute POSIX or Windows path, or one under the home folder.
_LOCAL_PATH = re.compile(r"(?:^|[\s(=,'\"])(?:/|~/|[A-Za-z]:[\\/])")
REDACTED = "<local path>"


def public_metadata(value):
    """Our metadata JSON without local paths (a run folder, a data
    folder): what is served to clients. Every string holding an absolute
    path becomes `"<local path>"`; everything else is kept."""
    if isinstance(value, dict):
        return {k: public_metadata(v) for k, v in value.items()}
    if isinstance(value, list):
        return [public_metadata(v) for v in value]
    if isinstance(value, str) and _LOCAL_PATH.search(value):
        return REDACTED
    return value


def warn_if_writable_by_others(path):
    """Logs a warning when `path` is writable by users other than its
    owner (and its group): whoever can write a model folder can run code
    in the server. Returns True when it warned."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    if not mode & stat.S_IWOTH:
        return False
    logger.warning(
        "Model folder %s is writable by other users (mode %o): anyone "
        "who can write a model folder can run code in this server (a "
        "SavedModel is a program). Make it writable by its owner only "
        "(chmod o-w).",
        path,
        stat.S_IMODE(mode),
    )
    return True


@dataclasses.dataclass
class VersionState:
    """What `status` reports for one version, and its retry bookkeeping.

    `state` is TF Serving's `ModelVersionStatus.State` name ("LOADING",
    "AVAILABLE", ...) and `error_code` its `tensorflow.error.Code` name;
    the front ends write them in their wire formats (`rest`,
    `grpc_service.fill_version_status`).
    """

    version: int
    state: str = START
    error_code: str = "OK"
    error_message: str = ""
    attempts: int = 0
    next_try: float = 0.0
    stamp: tuple = ()


def file_stamp(path):
    """Names, sizes and times of every file in a version folder: any
    change (a file still being copied, say) gives another stamp, so a
    version that failed to load is tried again as soon as its folder
    changes, not after the retry interval."""
    entries = []
    for root, folders, files in os.walk(path):
        folders.sort()
        for name in sorted(files):
            try:
                st = os.stat(os.path.join(root, name))
            except OSError:
                continue
            rel = os.path.relpath(os.path.join(root, name), path)
            entries.append((rel, st.st_size, st.st_mtime_ns))
    return tuple(entries)
