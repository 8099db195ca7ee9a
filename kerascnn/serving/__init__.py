"""Serve exported SavedModels over TensorFlow Serving's REST API.

    >>> from kerascnn.serving import make_server
    >>> server = make_server("saved_models", port=8501)
    >>> server.serve_forever()

`ModelServer` loads `<base>/<name>/<integer version>/` SavedModels and
answers status, metadata and `:predict` requests (no HTTP involved);
`make_server` binds it to a `ThreadingHTTPServer`. Existing TF Serving
REST clients work unchanged. No dependency beyond TensorFlow and the
standard library.
"""

from kerascnn.serving.app import (
    ModelServer,
    ServingHTTPServer,
    make_server,
    scan_models,
)
from kerascnn.serving.errors import (
    BadRequest,
    NotFound,
    ServingError,
)

__all__ = [
    "BadRequest",
    "ModelServer",
    "NotFound",
    "ServingError",
    "ServingHTTPServer",
    "make_server",
    "scan_models",
]
