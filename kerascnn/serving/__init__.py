"""Serve exported SavedModels over TensorFlow Serving's REST and gRPC APIs.

    >>> from kerascnn.serving import ServeOptions, make_server
    >>> server = make_server(ServeOptions(model_base_path="saved_models"))
    >>> server.serve_forever()

`ModelServer(ServeOptions(...))` (HTTP-free, thread-safe, no wire format)
loads `<base>/<name>/<integer version>/` SavedModels (TF2 or TF1 graphs;
`00000123` is version 123), polls for new versions, queues and batches
model calls, and answers with Python and NumPy objects:

    server.predict_arrays(name, {"images": x}) -> PredictResult
    await server.predict_arrays_async(...)     -> PredictResult
    server.run_examples("classify", name, serialized_examples)
                                                -> InferenceResult
    server.status(name)                         -> [VersionState, ...]
    server.get(name)                            -> LoadedVersion
    server.signature(name)                      -> input/output specs
    server.ready()                              -> (ready, versions)

The front ends speak the wire formats: `rest` (TF Serving's REST JSON,
`rest.handle(server, "GET", "/v1/models/lenet")` without HTTP),
`make_app` / `make_server` put it behind aiohttp, `grpc_service` serves
TF Serving's gRPC API and `v2` the Open Inference Protocol.
`build_servers(ServeOptions(...))` builds REST and gRPC as `kerascnn
serve` does, and `ServeOptions` is the one home of every server default.
Errors come from `kerascnn.serving.errors`, each with its HTTP `status`.
"""

import importlib
import typing

if typing.TYPE_CHECKING:  # the same names, for readers and type checkers
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
    from kerascnn.serving.options import DEFAULTS, ServeOptions
    from kerascnn.serving.servers import Servers, build_servers

# Public name -> the module that defines it. Imported on first use, so
# that `kerascnn serve --help` (which reads `ServeOptions`) does not load
# aiohttp, gRPC or TensorFlow.
_EXPORTS = {
    "kerascnn.serving.app": (
        "METRICS_PATH",
        "ServingHTTPServer",
        "make_app",
        "make_server",
        "scan_models",
    ),
    "kerascnn.serving.batching_parameters": (
        "BatchingParameters",
        "read_batching_parameters",
    ),
    "kerascnn.serving.core": (
        "InferenceResult",
        "ModelConfig",
        "ModelServer",
        "PredictResult",
        "read_model_config_file",
    ),
    "kerascnn.serving.errors": (
        "BadRequest",
        "DeadlineExceeded",
        "NotFound",
        "PayloadTooLarge",
        "RequestTimeout",
        "ServingError",
        "Unavailable",
    ),
    "kerascnn.serving.options": ("DEFAULTS", "ServeOptions"),
    "kerascnn.serving.servers": ("Servers", "build_servers"),
}
_MODULE_OF = {
    name: module for module, names in _EXPORTS.items() for name in names
}

__all__ = [
    "BadRequest",
    "BatchingParameters",
    "DEFAULTS",
    "DeadlineExceeded",
    "InferenceResult",
    "METRICS_PATH",
    "ModelConfig",
    "ModelServer",
    "NotFound",
    "PayloadTooLarge",
    "PredictResult",
    "RequestTimeout",
    "ServeOptions",
    "Servers",
    "ServingError",
    "ServingHTTPServer",
    "Unavailable",
    "build_servers",
    "make_app",
    "make_server",
    "read_batching_parameters",
    "read_model_config_file",
    "scan_models",
]


def __getattr__(name):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(
            f"module 'kerascnn.serving' has no attribute {name!r}"
        )
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
