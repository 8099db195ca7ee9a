"""Serve exported SavedModels over TensorFlow Serving's REST API.

    >>> from kerascnn.serving import make_server
    >>> server = make_server("saved_models", port=8501)
    >>> server.serve_forever()

`ModelServer` (HTTP-free, thread-safe) loads `<base>/<name>/<integer
version>/` SavedModels (TF2 or TF1 graphs; `00000123` is version 123),
polls for new versions, queues and batches model calls and answers
status, metadata, predict, classify and regress requests:

    server.predict_arrays(name, {"images": x}) -> PredictResult
    await server.predict_arrays_async(...)     -> PredictResult
    server.run_examples("classify", name, serialized_examples)
                                                -> InferenceResult
    server.status(name) / server.metadata(name) -> TF Serving JSON
    server.signature(name)                      -> input/output specs
    server.ready()                              -> (ready, versions)

`make_app` / `make_server` put it behind aiohttp. Errors come from
`kerascnn.serving.errors`, each with its HTTP `status`.
"""

from kerascnn.serving.app import (
    METRICS_PATH,
    ServingHTTPServer,
    make_app,
    make_server,
    scan_models,
)
from kerascnn.serving.batching_parameters import (
    BatchingParameters,
    read_batching_parameters,
)
from kerascnn.serving.core import (
    InferenceResult,
    ModelConfig,
    ModelServer,
    PredictResult,
    read_model_config_file,
)
from kerascnn.serving.errors import (
    BadRequest,
    DeadlineExceeded,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    ServingError,
    Unavailable,
)

__all__ = [
    "METRICS_PATH",
    "BadRequest",
    "BatchingParameters",
    "DeadlineExceeded",
    "InferenceResult",
    "ModelConfig",
    "ModelServer",
    "NotFound",
    "PayloadTooLarge",
    "PredictResult",
    "RequestTimeout",
    "ServingError",
    "ServingHTTPServer",
    "Unavailable",
    "make_app",
    "make_server",
    "read_batching_parameters",
    "read_model_config_file",
    "scan_models",
]
