"""What TF Serving's and the Open Inference Protocol's gRPC services
share: `ServingError` -> gRPC status code, the client's deadline, and the
wrapper that turns errors into statuses (a bug must not take the server
down)."""

import functools
import logging

import grpc

from kerascnn.serving.errors import (
    BadRequest,
    DeadlineExceeded,
    NotFound,
    PayloadTooLarge,
    ServingError,
    Unavailable,
)

logger = logging.getLogger("kerascnn.serving")

STATUS_CODES = (
    (BadRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
    (DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (PayloadTooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
)


def status_code(error):
    """The gRPC status code TF Serving uses for a `ServingError`."""
    for kind, code in STATUS_CODES:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


def rpc(method):
    """Turns `ServingError`s into gRPC status codes; logs real bugs."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except ServingError as e:
            context.abort(status_code(e), str(e))
        except Exception as e:  # a bug must not take the server down
            logger.exception("Internal error in gRPC %s", method.__name__)
            context.abort(
                grpc.StatusCode.INTERNAL,
                f"Internal error: {type(e).__name__}: {e}",
            )

    return wrapper


def deadline_seconds(context):
    """Seconds left before the client's deadline, or `None`."""
    remaining = context.time_remaining()
    if remaining is None or remaining > 10**8:  # no deadline set
        return None
    if remaining <= 0:
        raise DeadlineExceeded("The request's deadline has passed.")
    return remaining
