"""Connections: what one client (or many) cannot do to the REST server.

    site = CappedSockSite(runner, sock, max_connections=1000)
    loop.set_exception_handler(RateLimitedExceptionHandler())
    quiet_aiohttp_errors(); ensure_descriptors(1000)

At `--max-connections` a new connection takes the place of the open one
that has been idle the longest (no request being handled or queued: a
client that opened connections and sends nothing, or trickles its
headers, is the first to go), so connections held open cannot lock
clients out; only when every connection has a request in progress is the
new one answered 503 and closed at once. Failed accepts (out of file
descriptors) and aiohttp's errors for malformed requests are logged once
a minute with a count, never as a traceback each; the open-files limit
is raised to fit the connections; a request line without an HTTP version
gets an HTTP/1.1 400 (aiohttp would answer `HTTP/0.9 200`).
"""

import asyncio
import logging
import time

from aiohttp import web

from kerascnn.serving import handlers

logger = logging.getLogger("kerascnn.serving")

LOG_INTERVAL_SECONDS = 60.0


_OLD_HTTP = (
    b"HTTP/1.1 400 Bad Request\r\n"
    b"Content-Type: application/json\r\n"
    b"Connection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s"
)


@web.middleware
async def no_http09(request, handler):
    """A request line without a version (HTTP/0.9) gets an HTTP/1.1 400
    and the connection is closed; aiohttp would answer it `HTTP/0.9 200`
    with headers, which no HTTP/0.9 client reads."""
    if request.version >= (1, 0):
        return await handler(request)
    body = handlers.dumps(
        {"error": "Malformed request line: send HTTP/1.0 or HTTP/1.1."}
    )
    transport = request.transport
    if transport is not None:
        transport.write(_OLD_HTTP % (len(body), body))
        transport.close()
    # Ends the handler as a lost connection: nothing more is written.
    raise asyncio.CancelledError


_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json\r\n"
    b"Connection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s"
)


class _Refused(asyncio.Protocol):
    """A connection past `--max-connections` while every open one is
    busy: 503, then closed."""

    def __init__(self, limit):
        self.limit = limit

    def connection_made(self, transport):
        body = handlers.dumps(
            {
                "error": f"The server has {self.limit} open connections, "
                "all busy (--max-connections); retry later."
            }
        )
        transport.write(_BUSY % (len(body), body))
        transport.close()


def longest_idle(connections):
    """The connection idle the longest, or `None` when every one has a
    request being handled or queued.

    Reads aiohttp's `RequestHandler` state (3.9 to 3.14: the request in
    progress, the parsed requests queued, the keep-alive deadline it set
    when it last became idle); a handler without them counts as busy, so
    another aiohttp only falls back to refusing.
    """
    idle = [
        handler
        for handler in connections
        if getattr(handler, "_request_in_progress", True) is False
        and not getattr(handler, "_messages", True)
    ]
    if not idle:
        return None
    return min(
        idle, key=lambda h: getattr(h, "_next_keepalive_close_time", 0.0)
    )


class CappedSockSite(web.SockSite):
    """A `SockSite` that holds at most `max_connections` connections: at
    the cap a new one replaces the longest-idle one (`longest_idle`), or
    is refused with 503 when all are busy."""

    def __init__(self, runner, sock, max_connections, **kwargs):
        super().__init__(runner, sock, **kwargs)
        self.max_connections = int(max_connections)

    async def start(self):
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        limit = self.max_connections

        def factory():
            if len(server.connections) >= limit:
                idle = longest_idle(server.connections)
                if idle is None:
                    return _Refused(limit)
                idle.force_close()  # leaves server.connections when lost
            return server()

        self._server = await loop.create_server(
            factory, sock=self._sock, backlog=self._backlog
        )


class RateLimitedExceptionHandler:
    """An event-loop exception handler that logs failed accepts (out of
    file descriptors, say) once per `interval` seconds, in one line with
    the count, instead of a traceback per try; anything else goes to the
    loop's default handler."""

    def __init__(self, interval=LOG_INTERVAL_SECONDS):
        self.interval = float(interval)
        self._last = None
        self._quiet = 0

    def __call__(self, loop, context):
        if "accept" not in str(context.get("message", "")):
            loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if self._last is not None and now - self._last < self.interval:
            self._quiet += 1
            return
        error = context.get("exception")
        logger.warning(
            "Cannot accept connections: %s (%d more failures since the "
            "last message; logged once per %g s)",
            error if error is not None else context["message"],
            self._quiet,
            self.interval,
        )
        self._last, self._quiet = now, 0


def ensure_descriptors(max_connections, spare=256):
    """Raises the soft open-files limit to fit `max_connections` (plus
    `spare` for models, gRPC and logs) when the hard limit allows;
    warns when it does not. Returns the soft limit in force."""
    try:
        import resource
    except ImportError:  # pragma: no cover (not POSIX)
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + spare
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
        except (ValueError, OSError):
            pass
        if soft < wanted:
            logger.warning(
                "The open-files limit (%d) is below --max-connections (%d) "
                "plus %d spare: connections past it fail at accept "
                "(raise `ulimit -n`).",
                soft,
                max_connections,
                spare,
            )
    return soft


class OncePerInterval(logging.Filter):
    """A logging filter that lets one record through per `interval`
    seconds, without its traceback, counting the ones it held back: a
    client sending malformed requests (aiohttp logs "Error handling
    request" with a traceback for each) cannot flood the log."""

    def __init__(self, interval=LOG_INTERVAL_SECONDS):
        super().__init__()
        self.interval = float(interval)
        self._last = None
        self._quiet = 0

    def filter(self, record):
        now = time.monotonic()
        if self._last is not None and now - self._last < self.interval:
            self._quiet += 1
            return False
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            first = (str(error).strip().splitlines() or [""])[0]
            message += f": {type(error).__name__}: {first}"
        record.msg = "%s (%d more since the last; logged once per %g s)"
        record.args = (message, self._quiet, self.interval)
        record.exc_info = record.exc_text = None
        self._last, self._quiet = now, 0
        return True


def quiet_aiohttp_errors(interval=LOG_INTERVAL_SECONDS):
    """Rate-limits aiohttp's per-request error log (`aiohttp.server`)."""
    server_logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, OncePerInterval) for f in server_logger.filters):
        server_logger.addFilter(OncePerInterval(interval))
