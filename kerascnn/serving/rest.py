"""TF Serving's REST API over a `ModelServer`, without HTTP.

    route = handlers.parse_route("POST", "/v1/models/lenet:predict")
    answer = await rest.answer(model_server, route, body)   # a JSON dict
    status, answer = rest.handle(model_server, "GET", "/v1/models/lenet")

The one place where a REST request meets the core: `answer` dispatches a
parsed route (status, metadata, `:predict`, `:classify`, `:regress`) to
the `ModelServer`, whose arguments and results are Python and NumPy
objects, and writes TF Serving's JSON answers with the codec of
`handlers`. The aiohttp app (`app.models_handler`) reads the body and
calls `answer`; `handle` is the same dispatch for a request made without
HTTP (tests, embedding). Errors are TF Serving's `{"error": "..."}` with
the `ServingError`'s status code (`error_json`).
"""

import asyncio
import time

from kerascnn.serving import handlers
from kerascnn.serving.errors import ServingError

# The routes whose request has a body (`answer`'s `body`).
BODY_KINDS = ("predict", "classify", "regress")


def error_json(error):
    """TF Serving's error body: `{"error": "<message>"}`."""
    return {"error": str(error)}


def version_status_json(state):
    """One `ModelVersionStatus` of a `VersionState`, as TF Serving writes
    it (the version as a string, the error code by name)."""
    return {
        "version": str(state.version),
        "state": state.state,
        "status": {
            "error_code": state.error_code,
            "error_message": state.error_message,
        },
    }


def status_json(model_server, name, version=None, label=None):
    """TF Serving's `GetModelStatus` JSON."""
    states = model_server.status(name, version, label)
    return {"model_version_status": [version_status_json(s) for s in states]}


def metadata_json(model_server, name, version=None, label=None):
    """TF Serving's `GetModelMetadata` JSON, field for field."""
    loaded = model_server.get(name, version, label)
    return {
        "model_spec": {
            "name": name,
            "signature_name": "",
            "version": str(loaded.version),
        },
        "metadata": {
            "signature_def": handlers.signature_def_map_json(
                loaded.signature_defs
            )
        },
    }


async def predict_json(
    model_server,
    name,
    body,
    version=None,
    label=None,
    timeout=None,
    numpy_numbers=False,
):
    """A `:predict` body in, TF Serving's JSON answer out (with
    `numpy_numbers`, for `handlers.dumps` only: see `format_predict`).

    The body is parsed before the model is looked up (TF Serving reports
    a malformed body first), off the event loop when it is large, with
    its rows counted against the `RequestBudget` before any array is
    built; the deadline counts from the call.
    """
    started = time.monotonic()
    with model_server.observe(name, protocol="rest") as seen:

        def lookup(signature_name):
            seen.loaded = model_server.get(name, version, label)
            seen.name_signature(signature_name)
            return seen.loaded.signatures

        signature, feeds, rows = await model_server.parse_off_loop(
            body,
            handlers.parse_predict_body,
            body,
            lookup,
            model_server.budget,
        )
        seen.loaded.check_shapes(signature, feeds)
        left = model_server.time_left(timeout, started)
        outputs = await model_server.run_async(
            seen.loaded, signature, feeds, left
        )
        return handlers.format_predict(outputs, rows, numpy_numbers)


async def examples_json(
    model_server, method, name, body, version=None, label=None, timeout=None
):
    """A `:classify` / `:regress` body in, TF Serving's JSON answer out."""
    started = time.monotonic()
    with model_server.observe(name, api=method, protocol="rest") as seen:
        request = await model_server.parse_off_loop(
            body, handlers.parse_json, body
        )
        key = handlers.signature_name_of(request)
        serialized = handlers.examples_from_json(request, method)
        call = model_server.examples_call(
            seen, method, serialized, version, label, key
        )
        outputs = await model_server.run_async(
            *call, model_server.time_left(timeout, started)
        )
        result = model_server.examples_result(
            method, seen.loaded, key, outputs, len(serialized)
        )
        if method == "classify":
            return handlers.classify_json(result.result)
        return handlers.regress_json(result.result)


async def answer(model_server, route, body=b"", numpy_numbers=False):
    """TF Serving's JSON answer to one parsed `handlers.Route`.

    Args:
        model_server: the `ModelServer`.
        route: the `handlers.Route` of the request.
        body: the request body (bytes) of a `BODY_KINDS` route.
        numpy_numbers: leave numeric `:predict` outputs as NumPy arrays,
            for `handlers.dumps` to write straight from their memory.

    Raises:
        ServingError: what the request gets instead (its `status`).
    """
    if route.kind == "predict":
        return await predict_json(
            model_server,
            route.name,
            body,
            route.version,
            route.label,
            numpy_numbers=numpy_numbers,
        )
    if route.kind in ("classify", "regress"):
        return await examples_json(
            model_server,
            route.kind,
            route.name,
            body,
            route.version,
            route.label,
        )
    if route.kind == "metadata":
        return metadata_json(
            model_server, route.name, route.version, route.label
        )
    return status_json(model_server, route.name, route.version, route.label)


def handle(model_server, method, path, body=b""):
    """Answers one REST request without HTTP; `(status, JSON dict)`.

    Blocks (call it where no event loop runs). Never raises for a
    client's mistake: errors come back as `{"error": ...}` with their
    status code.
    """
    try:
        route = handlers.parse_route(method, path)
        return 200, asyncio.run(answer(model_server, route, body))
    except ServingError as e:
        return e.status, error_json(e)
