"""What one request may cost, checked before anything is allocated for it.

    budget = RequestBudget(max_request_rows=1024)
    budget.check_rows("x", 5000)              # BadRequest: 5000 rows
    budget.check_claim("x", (10**9,), 4)      # BadRequest: claims 4 GB
    budget.check_feeds(signature, feeds)      # rows, bytes, image pixels
    with bodies.hold(content_length): ...     # Unavailable when full

A request is refused with a 400 (`BadRequest`, gRPC `INVALID_ARGUMENT`)
when it asks for more than one request may:

- rows: the batch dimension of any input, with or without batching (a
  batching server also refuses more than `--max-batch-size`);
- bytes: the arrays its inputs expand to (shape x dtype size), checked
  on a gRPC `TensorProto`'s claimed shape before it is expanded;
- decoded pixels: width x height summed over every encoded image (PNG,
  JPEG, GIF, BMP) in its string inputs, read from the images' headers,
  so a 1 KB PNG that claims 100000x100000 is never decoded.

`InflightBytes` bounds the request bodies held at once (REST bodies by
their Content-Length before they are read, gRPC messages by their size);
past it a request gets 503 (`UNAVAILABLE`) at once. Every front end
(REST, gRPC, the Open Inference Protocol) calls these same checks.
"""

import ctypes
import ctypes.util
import dataclasses
import logging
import math
import threading

import numpy as np

from kerascnn.data import images as image_files
from kerascnn.serving.errors import BadRequest, Unavailable
from kerascnn.serving.options import DEFAULTS

DEFAULT_MAX_REQUEST_ROWS = DEFAULTS.max_request_rows
DEFAULT_MAX_DECODED_PIXELS = DEFAULTS.max_decoded_pixels  # 8192x8192
DEFAULT_MAX_TENSOR_BYTES = DEFAULTS.max_tensor_bytes
DEFAULT_MAX_INFLIGHT_BODY_BYTES = DEFAULTS.max_inflight_body_bytes

# After this many bytes of bodies have come and gone, glibc is asked to
# give freed memory back (`malloc_trim`) once the server holds none: a
# burst of large gRPC messages otherwise stays in malloc's arenas (100 x
# 20 MB messages kept ~490 MB of resident memory after their answers).
TRIM_AFTER_BYTES = 64 * 2**20
TRIM_DELAY_SECONDS = 1.0


@dataclasses.dataclass(frozen=True)
class RequestBudget:
    """The most one request may ask for (see the module doc).

    Attributes:
        max_request_rows: rows (batch dimension) of any input.
        max_decoded_pixels: width x height over all encoded images of a
            request.
        max_tensor_bytes: bytes of all of a request's input arrays.
    """

    max_request_rows: int = DEFAULT_MAX_REQUEST_ROWS
    max_decoded_pixels: int = DEFAULT_MAX_DECODED_PIXELS
    max_tensor_bytes: int = DEFAULT_MAX_TENSOR_BYTES

    def check_rows(self, name, rows):
        """`BadRequest` for more rows than `max_request_rows`."""
        if rows > self.max_request_rows:
            raise BadRequest(
                f"Input {_short(name)!r} has {rows} rows; one request may "
                f"have at most --max-request-rows ({self.max_request_rows}):"
                " split it into several requests."
            )

    def check_bytes(self, total, what="The request's inputs"):
        if total > self.max_tensor_bytes:
            raise BadRequest(
                f"{what} would take {total} bytes; one request may take at "
                f"most --max-tensor-bytes ({self.max_tensor_bytes})."
            )

    def check_claim(self, name, shape, item_size, batched=True):
        """Checks a claimed shape before anything is allocated for it.

        Args:
            name: the input's name (for the message).
            shape: the claimed dimensions.
            item_size: bytes per element (0 for strings, whose bytes are
                already in the request).
            batched: the first dimension is the batch (rows).
        """
        if any(d < 0 for d in shape):
            raise BadRequest(
                f"Input {_short(name)!r} claims a negative dimension: "
                f"{list(shape)}."
            )
        if batched and shape:
            self.check_rows(name, int(shape[0]))
        count = math.prod(int(d) for d in shape)
        if count * item_size > self.max_tensor_bytes:
            raise BadRequest(
                f"Input {_short(name)!r} claims shape {list(shape)}: "
                f"{count * item_size} bytes, over --max-tensor-bytes "
                f"({self.max_tensor_bytes})."
            )
        return count

    def check_feeds(self, signature, feeds):
        """Rows, bytes and decoded pixels of `{input: array}`.

        Raises:
            BadRequest: a limit is passed; nothing has run yet.
        """
        total, pixels = 0, 0
        for name, array in feeds.items():
            spec = signature.inputs.get(name)
            if np.ndim(array) and is_batched(spec):
                self.check_rows(name, len(array))
            total += array.nbytes
            if array.dtype == object:
                for value in array.reshape(-1):
                    if isinstance(value, bytes):
                        total += len(value)
                        pixels += self._image_pixels(value, pixels)
        self.check_bytes(total)

    def _image_pixels(self, data, so_far):
        size = image_files.encoded_size(data)
        if size is None:
            return 0
        width, height = size
        if so_far + width * height > self.max_decoded_pixels:
            raise BadRequest(
                f"The request's images decode to "
                f"{so_far + width * height} decoded pixels or more (the "
                f"last one is {width}x{height}); one request may decode at "
                f"most --max-decoded-pixels ({self.max_decoded_pixels})."
            )
        return width * height


def is_batched(spec):
    """True when the input's first dimension is its batch (unknown size)."""
    if spec is None or spec.shape.rank in (None, 0):
        return spec is None
    return spec.shape[0] is None


def _short(text, limit=80):
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "..."


# === Bodies in flight ===


class InflightBytes:
    """A bound on the request bytes held at once, shared by all front ends.

    Args:
        limit: most bytes held; a request that would pass it gets
            `Unavailable` (503, gRPC `UNAVAILABLE`) at once.
    """

    def __init__(self, limit=DEFAULT_MAX_INFLIGHT_BODY_BYTES):
        self.limit = int(limit)
        self._held = 0
        self._since_trim = 0
        self._trim_timer = None
        self._lock = threading.Lock()

    @property
    def held(self):
        return self._held

    def acquire(self, size):
        size = int(size)
        with self._lock:
            if self._held and self._held + size > self.limit:
                raise Unavailable(
                    f"{self._held} bytes of request bodies are in flight; "
                    f"{size} more would pass --max-inflight-body-bytes "
                    f"({self.limit}): retry later."
                )
            self._held += size
        return size

    def release(self, size):
        with self._lock:
            self._held -= size
            self._since_trim += size
            if (
                self._held == 0
                and self._since_trim >= TRIM_AFTER_BYTES
                and self._trim_timer is None
            ):
                # Later, off the request's thread: the message itself is
                # freed only after its handler returns.
                self._trim_timer = threading.Timer(
                    TRIM_DELAY_SECONDS, self._trim
                )
                self._trim_timer.daemon = True
                self._trim_timer.start()

    def _trim(self):
        with self._lock:
            self._trim_timer = None
            if self._held:
                return  # the next release to 0 schedules it again
            self._since_trim = 0
        release_free_memory()

    def hold(self, size):
        """`with bodies.hold(n):` holds `n` bytes for the block."""
        return _Held(self, size)


class _Held:
    __slots__ = ("owner", "size")

    def __init__(self, owner, size):
        self.owner, self.size = owner, owner.acquire(size)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.owner.release(self.size)
        return False


_libc = None
_M_ARENA_MAX = -8  # mallopt's parameter number (glibc malloc.h)


def _glibc():
    """glibc, or `None` (another C library, or none found)."""
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            _libc = ctypes.CDLL(name) if name else False
            _libc and (_libc.malloc_trim, _libc.mallopt)  # glibc only
        except (OSError, AttributeError):
            _libc = False
    return _libc or None


def release_free_memory():
    """Gives memory that malloc holds free back to the system (glibc's
    `malloc_trim(0)`); True when it did. A no-op elsewhere."""
    libc = _glibc()
    if libc is None:
        return False
    try:
        return bool(libc.malloc_trim(0))
    except Exception:  # noqa: BLE001 (never fails a request)
        logging.getLogger(__name__).debug("malloc_trim failed", exc_info=True)
        return False


def limit_malloc_arenas(count):
    """At most `count` glibc malloc arenas from now on (as the
    `MALLOC_ARENA_MAX` variable does at start-up); 0 leaves glibc's
    default. True when glibc took it.

    glibc gives each thread that meets contention an arena of its own,
    up to 8 per core, and memory freed in one stays there: after 100
    gRPC messages of 20 MB the server kept ~230 MB more than before (5 MB
    with 2 arenas), with the same throughput (docs/serving.md).
    """
    libc = _glibc()
    if not count or libc is None:
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, int(count)))
