"""Serving errors: each carries the HTTP status TensorFlow Serving would use.

A request a client got wrong is a `BadRequest` (400), and so is any path
under `/v1/` outside TF Serving's grammar; an unknown model or version is
a `NotFound` (404); a body that does not arrive in time is a
`RequestTimeout` (408); a full queue or a model with no loaded version is
`Unavailable` (503); a request past its deadline is `DeadlineExceeded`
(504). All become `{"error": "..."}` bodies. A
server that cannot start (a missing base path, no versions) is a plain
`ServingError`, which the CLI prints as one line.
"""

from kerascnn.errors import KerasCNNError


class ServingError(KerasCNNError):
    """Base class for serving errors; `status` is the HTTP status code."""

    status = 500


class BadRequest(ServingError):
    """Malformed JSON, a missing key, a wrong shape or dtype (HTTP 400)."""

    status = 400


class NotFound(ServingError):
    """An unknown model or version (HTTP 404)."""

    status = 404


class RequestTimeout(ServingError):
    """A request body that did not arrive in time (HTTP 408)."""

    status = 408


class PayloadTooLarge(ServingError):
    """A request body over the server's limit (HTTP 413)."""

    status = 413


class Unavailable(ServingError):
    """No capacity (the model's queue is full) or no version loaded (503).

    TF Serving answers `UNAVAILABLE`; a client should retry after a short
    back-off.
    """

    status = 503


class DeadlineExceeded(ServingError):
    """The request's deadline passed before it was answered (HTTP 504)."""

    status = 504
