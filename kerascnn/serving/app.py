"""TF Serving's REST API on aiohttp, in front of a `ModelServer`.

    >>> from kerascnn.serving import ServeOptions, make_server
    >>> server = make_server(ServeOptions(model_base_path="saved_models"))
    >>> server.serve_forever()      # until SIGTERM / Ctrl-C / shutdown()

Routes (`<v>` an integer version, the highest when omitted; or
`/labels/<label>` instead of `/versions/<v>`):

    GET  /v1/models/<name>[/versions/<v>]            version status
    GET  /v1/models/<name>[/versions/<v>]/metadata   signature defs
    POST /v1/models/<name>[/versions/<v>]:predict    instances or inputs
    POST /v1/models/<name>[/versions/<v>]:classify   examples (+ context)
    POST /v1/models/<name>[/versions/<v>]:regress    examples (+ context)
    GET  /monitoring/prometheus/metrics              Prometheus metrics
    GET  /healthz, /readyz                           liveness, readiness
    *    /v2/...                                     KServe v2 (`v2/rest.py`)

aiohttp was chosen over the standard library's `http.server` (not meant
for production) for its event loop: thousands of open connections cost
no thread each, and model calls run on the `ModelServer`'s bounded
worker threads, off the loop. What a `/v1/` route answers is
`rest.answer`'s (this module reads the body and writes the JSON).
Errors are `{"error": "..."}` with TF Serving's status codes (any other
path or method under `/v1/` is its 400 "Malformed request"); 503 means
"busy, retry later".

`make_app` returns the `web.Application` before it starts, so other
front ends can add routes (`extra_routes`, or `app.router.add_*`).
"""

import asyncio
import contextlib
import logging
import signal
import socket
import threading

from aiohttp import web

from kerascnn.export import layout
from kerascnn.serving import connections, handlers, rest
from kerascnn.serving.core import ModelServer
from kerascnn.serving.errors import (
    PayloadTooLarge,
    RequestTimeout,
    ServingError,
)
from kerascnn.serving.model_config import discover_models
from kerascnn.serving.options import DEFAULTS
from kerascnn.serving.v2 import rest as v2_rest

logger = logging.getLogger("kerascnn.serving")

MAX_BODY_BYTES = DEFAULTS.max_body_bytes
METRICS_PATH = "/monitoring/prometheus/metrics"
LIVE_PATH = "/healthz"
READY_PATH = "/readyz"
MODEL_SERVER = web.AppKey("model_server", ModelServer)
MAX_BODY = web.AppKey("max_body_bytes", int)
BODY_TIMEOUT = web.AppKey("body_timeout", float)
METRICS_PAGE = web.AppKey("metrics_page", object)
BODY_TIMEOUT_SECONDS = DEFAULTS.body_timeout_seconds


def json_response(status, answer):
    """A JSON response; float32 values were already shortened."""
    return web.Response(
        status=status,
        body=handlers.dumps(answer),
        content_type="application/json",
    )


def error_response(error):
    return json_response(error.status, rest.error_json(error))


@web.middleware
async def json_errors(request, handler):
    """Every error, aiohttp's own included, as `{"error": ...}`."""
    try:
        return await handler(request)
    except RequestTimeout as e:
        # Answer, then close: no lingering on a body that never ends.
        response = error_response(e)
        response.force_close()
        await response.prepare(request)
        await response.write_eof()
        request.protocol.force_close()
        return response
    except ServingError as e:
        return error_response(e)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        text = e.text if e.text and not e.text.startswith("<") else e.reason
        return json_response(e.status, {"error": f"{e.status}: {text}"})
    except asyncio.CancelledError:
        raise
    except Exception as e:  # a bug must not take the server down
        logger.exception(
            "Internal error on %s %s", request.method, request.path
        )
        return json_response(
            500, {"error": f"Internal error: {type(e).__name__}: {e}"}
        )


def _announced_size(request):
    """The body size a request announces (413 past the limit): its
    Content-Length, or the limit itself for a chunked body."""
    limit = request.app[MAX_BODY]
    size = request.content_length
    if size is not None and size > limit:
        raise PayloadTooLarge(
            f"Request body of {size} bytes is over the limit of {limit} bytes."
        )
    return limit if size is None else size


@contextlib.asynccontextmanager
async def held_body(request):
    """`async with held_body(request) as body:` the request body, counted
    against the bodies in flight by its announced size before a byte of
    it is read, and until the block ends (the answer is made)."""
    server = request.app[MODEL_SERVER]
    with server.bodies.hold(_announced_size(request)):
        yield await _read_body(request)


async def _read_body(request):
    """The request body, read within `--body-timeout-seconds`; 413 for a
    Content-Length over `--max-body-bytes` before a byte is read."""
    _announced_size(request)
    limit = request.app[MAX_BODY]
    size = request.content_length
    seconds = request.app[BODY_TIMEOUT]
    try:
        if request.content.is_eof():  # here whole: no timer needed
            return await request.read()
        async with asyncio.timeout(seconds):
            return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(
            f"Request body is over the limit of {limit} bytes."
        ) from None
    except TimeoutError:
        # A body slower than this, or shorter than its Content-Length.
        raise RequestTimeout(
            f"The request body did not arrive within {seconds:g} s "
            f"({size} bytes announced)."
        ) from None


async def models_handler(request):
    """Everything under `/v1/`: TF Serving's status, metadata, `:predict`,
    `:classify` and `:regress`, by version or label; any other path or
    method there is its `400 Malformed request`."""
    server = request.app[MODEL_SERVER]
    route = handlers.parse_route(request.method, request.raw_path)
    if route.kind in rest.BODY_KINDS:
        # The announced body is counted against the bodies in flight
        # before a byte of it is read, and until the answer is made.
        async with held_body(request) as body:
            answer = await rest.answer(server, route, body, numpy_numbers=True)
            del body
    else:
        answer = await rest.answer(server, route)
    return json_response(200, answer)


class MetricsPage:
    """Renders the metrics page on a thread, off the event loop; scrapes
    that arrive while a rendering runs share it."""

    def __init__(self, metrics):
        self.metrics = metrics
        self._rendering = None

    async def render(self):
        if self._rendering is None:
            loop = asyncio.get_running_loop()
            self._rendering = loop.run_in_executor(None, self.metrics.render)
            self._rendering.add_done_callback(self._done)
        return await asyncio.shield(self._rendering)

    def _done(self, future):
        self._rendering = None


async def metrics_handler(request):
    page = request.app[METRICS_PAGE]
    return web.Response(
        body=await page.render(),
        headers={"Content-Type": page.metrics.content_type},
    )


async def live_handler(request):
    """Liveness: the process answers HTTP (Kubernetes `livenessProbe`)."""
    return json_response(200, {"status": "alive"})


async def ready_handler(request):
    """Readiness: 200 when every configured model has an AVAILABLE
    version, else 503 (Kubernetes `readinessProbe`)."""
    ready, models = request.app[MODEL_SERVER].ready()
    answer = {"ready": ready, "models": models}
    return json_response(200 if ready else 503, answer)


def cors_middleware(allowed_origins):
    """CORS for browsers on other origins: `Access-Control-Allow-*` for
    an allowed `Origin` (or any with `*`), and preflight `OPTIONS`
    answered with 204. Requests without an allowed origin get no CORS
    header, so the browser blocks them."""
    origins = frozenset(allowed_origins)

    def allow(origin):
        if not origin:
            return None
        if "*" in origins:
            return "*"
        return origin if origin in origins else None

    def headers(value):
        return {
            "Access-Control-Allow-Origin": value,
            "Access-Control-Allow-Methods": "POST, GET",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        }

    @web.middleware
    async def cors(request, handler):
        value = allow(request.headers.get("Origin"))
        if request.method == "OPTIONS" and (
            "Access-Control-Request-Method" in request.headers
        ):
            if value is None:
                return json_response(
                    403,
                    {"error": "Origin not allowed by --cors-allowed-origins."},
                )
            return web.Response(status=204, headers=headers(value))
        response = await handler(request)
        if value is not None:
            response.headers.update(headers(value))
        return response

    return cors


def make_app(
    model_server,
    max_body_bytes=MAX_BODY_BYTES,
    extra_routes=(),
    cors_allowed_origins=(),
    body_timeout=BODY_TIMEOUT_SECONDS,
):
    """The aiohttp application serving `model_server`.

    Args:
        model_server: the `ModelServer`.
        max_body_bytes: larger request bodies get 413.
        extra_routes: `web.RouteDef`s (`web.get(path, handler)`, ...) to
            add, e.g. a gRPC front end's try-it page.
        cors_allowed_origins: origins (or `"*"`) whose browsers may call
            the API; empty (the default) sends no CORS header.
        body_timeout: seconds a request body may take to arrive (a slow
            or lying client gets 408 after it).

    Returns:
        A `web.Application`, not yet started: more routes may be added.
    """
    middlewares = [connections.no_http09, json_errors]
    if cors_allowed_origins:
        middlewares.insert(0, cors_middleware(cors_allowed_origins))
    app = web.Application(
        client_max_size=max_body_bytes, middlewares=middlewares
    )
    app[MODEL_SERVER] = model_server
    app[METRICS_PAGE] = MetricsPage(model_server.metrics)
    app[MAX_BODY] = int(max_body_bytes)
    app[BODY_TIMEOUT] = float(body_timeout)
    # TF Serving matches `(?i)/v1/.*`: every path there is its handler's.
    app.router.add_route("*", r"/{v1:[vV]1}/{tail:.*}", models_handler)
    app.router.add_get(METRICS_PATH, metrics_handler)
    app.router.add_get(LIVE_PATH, live_handler)
    app.router.add_get(READY_PATH, ready_handler)
    # The Open Inference Protocol (KServe v2) beside TF Serving's API.
    app.add_routes(v2_rest.routes(model_server, held_body, max_body_bytes))
    app.add_routes(list(extra_routes))
    return app


class ServingHTTPServer:
    """An aiohttp server bound at construction; runs in any thread.

    Args:
        model_server: the `ModelServer` answering requests.
        options: the `ServeOptions` of the HTTP side (`DEFAULTS` when
            `None`): `host`, `rest_api_port` (0 picks a free port),
            `max_body_bytes` (413 past it), `body_timeout_seconds` (408
            after it), `idle_timeout_seconds` (a connection idle, or whose
            request headers never complete, is closed after it),
            `max_connections` (more are answered 503 and closed),
            `cors_allowed_origins` and `verbose` (log every request).
        extra_routes: more `web.RouteDef`s for the app.
        backlog: the listening socket's backlog.
        shutdown_timeout: seconds in-flight requests get at shutdown.

    Attributes:
        model_server: the `ModelServer` answering requests.
        app: the `web.Application` (add routes before serving).
        url: `http://host:port` actually bound (port 0 picks one).

    Raises:
        ServingError: the address cannot be bound.
    """

    def __init__(
        self,
        model_server,
        options=None,
        *,
        extra_routes=(),
        backlog=1024,
        shutdown_timeout=30.0,
    ):
        options = (DEFAULTS if options is None else options).validate()
        host, port = options.host, options.rest_api_port
        self.model_server = model_server
        self.max_connections = int(options.max_connections)
        connections.ensure_descriptors(self.max_connections)
        connections.quiet_aiohttp_errors()
        self.app = make_app(
            model_server,
            options.max_body_bytes,
            extra_routes,
            options.cors_origins(),
            options.body_timeout_seconds,
        )
        self.idle_timeout = float(options.idle_timeout_seconds)
        self.shutdown_timeout = shutdown_timeout
        self.access_log = options.verbose
        self.backlog = backlog
        try:
            self._sock = socket.create_server(
                (host, port),
                family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                backlog=backlog,
            )
        except OSError as e:
            raise ServingError(f"Cannot listen on {host}:{port}: {e}") from None
        self._address = self._sock.getsockname()[:2]
        self._loop = None
        self._stop = None
        self._started = threading.Event()
        self._done = threading.Event()
        self._thread = None

    @property
    def server_address(self):
        return self._address

    @property
    def url(self):
        host, port = self.server_address
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    async def _serve(self, handle_signals):
        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(
            connections.RateLimitedExceptionHandler()
        )
        self._stop = asyncio.Event()
        runner = web.AppRunner(
            self.app,
            access_log=logger if self.access_log else None,
            shutdown_timeout=self.shutdown_timeout,
            # Also closes a connection whose request never completes (a
            # client sending its headers byte by byte): aiohttp's own
            # default would hold it for an hour.
            keepalive_timeout=self.idle_timeout,
        )
        await runner.setup()
        site = connections.CappedSockSite(
            runner,
            self._sock,
            self.max_connections,
            shutdown_timeout=self.shutdown_timeout,
            backlog=self.backlog,
        )
        await site.start()
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._loop.add_signal_handler(sig, self._stop.set)
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            # Stops accepting, lets in-flight requests finish.
            await runner.cleanup()

    def serve_forever(self, handle_signals=False):
        """Serves until `shutdown()` (or SIGTERM/SIGINT with
        `handle_signals`, main thread only); in-flight requests finish."""
        self._run(handle_signals)

    def _run(self, handle_signals):
        try:
            asyncio.run(self._serve(handle_signals))
        finally:
            self._started.set()
            self._done.set()

    def start(self):
        """Serves in a background thread; returns once it accepts."""
        self._thread = threading.Thread(
            target=self._run,
            args=(False,),
            name="kerascnn-http",
            daemon=True,
        )
        self._thread.start()
        self._started.wait(timeout=60)
        return self

    def shutdown(self):
        """Stops serving (from another thread); waits until stopped."""
        if self._loop is not None and not self._done.is_set():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._done.wait(timeout=self.shutdown_timeout + 5)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def server_close(self):
        """Closes the socket and stops the `ModelServer`'s threads."""
        self._sock.close()
        self.model_server.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


def make_server(options=None, *, model_server=None, extra_routes=()):
    """Loads the models and binds an HTTP server (not yet serving).

    Args:
        options: a `ServeOptions` (`DEFAULTS` when `None`): what to serve
            and how (see `ModelServer`), and the HTTP side (see
            `ServingHTTPServer`).
        model_server: an existing `ModelServer` to serve instead of one
            built from `options`.
        extra_routes: more `web.RouteDef`s for the app.

    Returns:
        A `ServingHTTPServer`: `serve_forever()` (or `start()`), then
        `shutdown()` and `server_close()`.

    Raises:
        ServingError: nothing to serve, or the address cannot be bound.
    """
    if model_server is None:
        model_server = ModelServer(options)
    try:
        return ServingHTTPServer(
            model_server, options, extra_routes=extra_routes
        )
    except ServingError:
        model_server.close(timeout=1)
        raise


def scan_models(base_path):
    """`{name: (model folder, [versions])}` under `base_path`."""
    return {
        c.name: (c.base_path, layout.list_versions(c.base_path))
        for c in discover_models(base_path)
        if layout.list_versions(c.base_path)
    }
