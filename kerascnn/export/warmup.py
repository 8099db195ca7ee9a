"""TF Serving warm-up records: real requests written beside a SavedModel.

TensorFlow Serving replays `assets.extra/tf_serving_warmup_requests` (a
TFRecord file of `PredictionLog` protos) before it marks a version
`AVAILABLE`, so the first client request does not pay for graph
initialization; `kerascnn serve` replays the same file.

    >>> write_warmup_requests("saved_models/lenet/1", "lenet", meta, x, task)
    >>> for request in read_warmup_requests("saved_models/lenet/1"):
    ...     signature_name, arrays = request_arrays(request)

`x` holds real model inputs (the test examples export verifies on). Each
signature gets requests of `WARMUP_BATCH_SIZES` rows, its inputs derived
from those examples by input name and dtype, as the model's task says
(`Task.warmup_values`); image models (`image_values`):

    images  float   the normalized model input itself
    pixels  float   the raw pixels, normalization undone, in [0, 255]
    images  string  the same pixels encoded as PNG

(the slot tagger adds `token_ids` and `sentences`:
`kerascnn.tasks.sequence_tagging.export.warmup_values`).

The inputs come from the SignatureDefs in `saved_model.pb`, so the
requests match the signatures that were actually written; a signature
with an input not listed above gets no request (and a warning), and one
without inputs (`metadata`) gets an empty request.
"""

import logging
import os

from kerascnn.errors import ExportError
from kerascnn.lazy import LazyModule

np = LazyModule("numpy")
tf = LazyModule("tensorflow")

logger = logging.getLogger("kerascnn.export")

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
WARMUP_BATCH_SIZES = (1, 2, 4)
WARMUP_EXAMPLES = sum(WARMUP_BATCH_SIZES)


def warmup_path(version_dir):
    """`<version_dir>/assets.extra/tf_serving_warmup_requests`."""
    return os.path.join(os.fspath(version_dir), WARMUP_DIR, WARMUP_FILE)


# === SignatureDefs without loading the model ===


def read_signature_defs(version_dir):
    """`{signature name: SignatureDef}` parsed from `saved_model.pb`."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(os.fspath(version_dir), "saved_model.pb")
    saved = saved_model_pb2.SavedModel()
    try:
        with open(path, "rb") as f:
            saved.ParseFromString(f.read())
    except (OSError, ValueError) as e:
        raise ExportError(f"Cannot read {path!r}: {e}") from None
    graphs = [g for g in saved.meta_graphs if "serve" in g.meta_info_def.tags]
    if not graphs:
        raise ExportError(f"{path!r} has no meta graph tagged 'serve'.")
    return {
        name: signature
        for name, signature in sorted(graphs[0].signature_def.items())
        if not name.startswith("__")  # __saved_model_init_op: no signature
    }


# === Request values from real examples ===


def raw_pixels(x, preprocessing):
    """Undoes `make_normalizer`: model input -> uint8 pixels in [0, 255]."""

    x = np.asarray(x, np.float64)
    if preprocessing.get("std") is not None:
        x = x * np.asarray(preprocessing["std"], np.float64)
    if preprocessing.get("mean") is not None:
        x = x + np.asarray(preprocessing["mean"], np.float64)
    x = (x - float(preprocessing.get("offset", 0.0))) / float(
        preprocessing.get("scale", 1.0)
    )
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def encode_png(pixels):
    """`(N, H, W, C)` uint8 -> `N` PNG byte strings."""

    return [tf.io.encode_png(p).numpy() for p in pixels]


def image_values(key, kind, x, meta):
    """An image model's warm-up input `key` of `kind` (`"float"`,
    `"int"`, `"string"`) from normalized model inputs `x`, or `None`
    (numeric values are cast to the input's dtype by the caller).

    The default of `Task.warmup_values`: `images` (float: the model
    input itself; string: PNG bytes), `pixels` (raw, in [0, 255]) and
    `feature_map_gradients`' `class_index` (-1: the predicted class).
    """

    if key == "pixels" and kind == "float":
        return raw_pixels(x, meta.preprocessing)
    if key == "images" and kind == "float":
        return np.asarray(x)
    if key == "class_index" and kind == "int":
        return np.full(len(x), -1)
    if key == "images" and kind == "string":
        return np.array(
            encode_png(raw_pixels(x, meta.preprocessing)), dtype=object
        )
    return None


def _input_values(key, dtype, x, meta, task):
    """The array for input `key` of TF dtype enum `dtype` (the task's
    `Task.warmup_values`, cast to the dtype), or `None`."""
    from tensorflow.core.framework import types_pb2

    as_numpy = {
        types_pb2.DT_FLOAT: np.float32,
        types_pb2.DT_DOUBLE: np.float64,
        types_pb2.DT_INT32: np.int32,
        types_pb2.DT_INT64: np.int64,
    }.get(dtype)
    kind = {
        types_pb2.DT_FLOAT: "float",
        types_pb2.DT_DOUBLE: "float",
        types_pb2.DT_INT32: "int",
        types_pb2.DT_INT64: "int",
        types_pb2.DT_STRING: "string",
    }.get(dtype)
    if kind is None:
        return None
    values = task.warmup_values(key, kind, x, meta)
    if values is None or as_numpy is None:
        return values
    return np.asarray(values).astype(as_numpy)


def _batches(x, sizes):
    """Consecutive slices of `x` with `sizes` rows, cycling if short."""

    start = 0
    for size in sizes:
        rows = [(start + i) % len(x) for i in range(size)]
        start += size
        yield np.asarray(x)[rows]


def _request(model_name, signature_name, inputs, rows, meta, task):
    """One `PredictRequest`, or `None` if an input is not one we know."""
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for key, info in inputs:
        values = _input_values(key, info.dtype, rows, meta, task)
        if values is None:
            return None
        request.inputs[key].CopyFrom(tf.make_tensor_proto(values))
    return request


def build_requests(model_name, signature_defs, meta, x, task):
    """`PredictRequest`s: `WARMUP_BATCH_SIZES` rows per signature; `task`
    (the model's `Task`) makes each input's values."""
    requests = []
    if len(x) == 0:
        logger.warning("No examples: no warm-up requests written.")
        return requests
    for name, signature in signature_defs.items():
        inputs = sorted(signature.inputs.items())
        sizes = WARMUP_BATCH_SIZES if inputs else (0,)
        made = [
            _request(model_name, name, inputs, rows, meta, task)
            for rows in _batches(x, sizes)
        ]
        if None in made:
            logger.warning(
                "No warm-up requests for signature %r: its inputs %s are "
                "not ones kerascnn writes.",
                name,
                [k for k, _ in inputs],
            )
            continue
        requests.extend(made)
    return requests


# === The TFRecord file ===


def write_warmup_requests(version_dir, model_name, meta, x, task):
    """Writes the warm-up file into a SavedModel folder; returns its path.

    Args:
        version_dir: the SavedModel folder (`saved_model.pb` inside).
        model_name: goes into each request's `model_spec.name`.
        meta: the `ModelMetadata` (preprocessing, vocabulary).
        x: real model inputs, at least one example.
        task: the model's `Task` (`Task.warmup_values` makes the inputs).
    """
    from tensorflow_serving.apis import prediction_log_pb2

    signature_defs = read_signature_defs(version_dir)
    requests = build_requests(model_name, signature_defs, meta, x, task)
    path = warmup_path(version_dir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for request in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(version_dir):
    """The `PredictRequest`s of a version's warm-up file (`[]` if none).

    Raises:
        ExportError: the file exists but is not a TFRecord of
            `PredictionLog`s holding predict requests.
    """
    from tensorflow_serving.apis import prediction_log_pb2

    path = warmup_path(version_dir)
    if not os.path.isfile(path):
        return []
    requests = []
    try:
        for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
            log = prediction_log_pb2.PredictionLog.FromString(record)
            if log.WhichOneof("log_type") != "predict_log":
                raise ExportError(
                    f"{path!r}: only predict_log warm-up records are "
                    f"supported; found {log.WhichOneof('log_type')}."
                )
            requests.append(log.predict_log.request)
    except (tf.errors.OpError, ValueError) as e:
        raise ExportError(
            f"Unreadable warm-up file {path!r}: {str(e).splitlines()[0]}"
        ) from None
    return requests


def request_arrays(request):
    """`(signature name, {input: np.ndarray})` of one `PredictRequest`."""

    name = request.model_spec.signature_name or "serving_default"
    return name, {
        key: tf.make_ndarray(proto) for key, proto in request.inputs.items()
    }


def replay_warmup_requests(version_dir, run):
    """Calls `run(signature_name, {input: array})` for every record.

    What TF Serving does before it marks a version available; a record
    that fails fails the load, as there. Returns the number of records
    replayed (0 without a warm-up file).

    Raises:
        ExportError: an unreadable file or a failing record, with the
            record's number and signature.
    """
    requests = read_warmup_requests(version_dir)
    for number, request in enumerate(requests, 1):
        signature_name, arrays = request_arrays(request)
        try:
            run(signature_name, arrays)
        except Exception as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ExportError(
                f"Warm-up record {number} of {len(requests)} (signature "
                f"{signature_name!r}) failed: {first}"
            ) from None
    return len(requests)
