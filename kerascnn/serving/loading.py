"""Loading one SavedModel version: load, warm up, report its state.

`load_version` loads a version folder and warms it (TF Serving's warm-up
records when the export wrote them, else one call per signature) before
the server switches to it; `VersionState` is what `status` reports for a
version, in TF Serving's ManagerState names, with the bookkeeping of
bounded load retries.
"""

import dataclasses
import gc
import logging
import os
import time

import numpy as np

from kerascnn.export import layout
from kerascnn.serving import arrays, handlers
from kerascnn.serving.errors import BadRequest, ServingError

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
            handlers.PREDICT_METHOD
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


def _error_code(error):
    code = getattr(error, "error_code", None)
    if code is not None:
        import tensorflow as tf

        names = {
            v: k
            for k, v in vars(tf.errors).items()
            if k.isupper() and isinstance(v, int)
        }
        return names.get(code, "UNKNOWN")
    return "NOT_FOUND" if isinstance(error, FileNotFoundError) else "UNKNOWN"


def freeze_heap():
    """Moves every live object out of reach of Python's cyclic GC.

    A loaded SavedModel leaves hundreds of thousands of long-lived
    Python objects; without this, the full collections that the
    requests' own allocations trigger walk all of them, which cost
    more CPU per request than LeNet's call. Unfreezing and collecting
    first frees the cycles of versions unloaded since the last freeze.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def load_version(name, version, path):
    """Loads and warms one version; raises `ServingError` with a TF
    Serving error code in `.error_code`."""
    import tensorflow as tf

    try:
        module = tf.saved_model.load(path)
        signatures = layout.signatures_of(module)
        meta_graph = read_serving_meta_graph(path)
    except Exception as e:  # a corrupt folder must not stop the others
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        error = ServingError(f"Cannot load SavedModel {path!r}: {first}")
        error.error_code = _error_code(e)
        raise error from None
    loaded = LoadedVersion(
        name,
        version,
        path,
        signatures,
        layout.read_metadata(path),
        module,
        dict(meta_graph.signature_def),
        graph_model=not meta_graph.object_graph_def.nodes,
    )
    warm_up(loaded)
    return loaded


def _warmup_feed(spec):
    shape = [1 if d is None else int(d) for d in (spec.shape or [1])]
    if spec.dtype.name == "string":
        return np.full(shape, b"warmup", dtype=object)
    return np.zeros(shape, dtype=spec.dtype.as_numpy_dtype)


def replay_warmup_records(loaded):
    """Replays TF Serving's warm-up file of a version; returns its count.

    `kerascnn export` writes real requests to
    `assets.extra/tf_serving_warmup_requests`; as in TF Serving, a record
    that fails fails the load.
    """
    from kerascnn.errors import ExportError
    from kerascnn.export import warmup

    def run(signature_name, inputs):
        if signature_name not in loaded.signatures:
            raise BadRequest(f"no signature {signature_name!r}")
        signature = loaded.signatures[signature_name]
        feeds = arrays.check_arrays(signature, inputs)
        loaded.check_shapes(signature, feeds)
        handlers.run_signature(signature, feeds)

    started = time.perf_counter()
    try:
        count = warmup.replay_warmup_requests(loaded.path, run)
    except ExportError as e:
        error = ServingError(f"Cannot warm up {loaded.path!r}: {e}")
        error.error_code = "INVALID_ARGUMENT"
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
    """Real calls on every signature, so the first request is not slow.

    The version's warm-up records when it has them, else one call per
    signature on zeros (numbers) or `b"warmup"` (strings); a signature
    that rejects those (an image decoder, say) was still traced, which
    is what warming is for.
    """
    if replay_warmup_records(loaded):
        return
    for signature in loaded.signatures.values():
        try:
            feeds = {n: _warmup_feed(s) for n, s in signature.inputs.items()}
            handlers.run_signature(signature, feeds)
        except BadRequest:
            pass


@dataclasses.dataclass
class VersionState:
    """What `status` reports for one version, and its retry bookkeeping."""

    version: int
    state: str = START
    error_code: str = "OK"
    error_message: str = ""
    attempts: int = 0
    next_try: float = 0.0
    stamp: tuple = ()

    def as_json(self):
        return {
            "version": str(self.version),
            "state": self.state,
            "status": {
                "error_code": self.error_code,
                "error_message": self.error_message,
            },
        }


def file_stamp(path):
    try:
        st = os.stat(os.path.join(path, layout.SAVED_MODEL_FILE))
    except OSError:
        return ()
    return (st.st_mtime_ns, st.st_size)
