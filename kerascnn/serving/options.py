"""`ServeOptions`: every setting of a server, its default and its check.

The one home of the serving defaults: `kerascnn serve` builds its flags
(names, defaults, help) from these fields, `build_servers(options)` builds
the servers from them, `ModelServer(options)` and `make_server(options)`
take one (`DEFAULTS` when none is given), and `GrpcServer` takes its
keyword defaults from `DEFAULTS`. Names are TF Serving's flag names (with
underscores here, dashes on the command line).

    from kerascnn.serving import ServeOptions, build_servers
    servers = build_servers(ServeOptions(rest_api_port=0, port=0))
"""

import dataclasses

from kerascnn import validation as v
from kerascnn.data import images as image_files
from kerascnn.serving.batching_parameters import (
    BatchingParameters,
    read_batching_parameters,
)
from kerascnn.serving.errors import ServingError

MiB = 2**20


def _option(default, help, kind=None, flags=None, default_text=None):
    """A field with what the command line needs to show it.

    `kind` names the check and the flag's type ("port", "count",
    "positive_count", "seconds", "positive_seconds", "file", "folder"),
    `flags` overrides the flag spelling, `default_text` documents a
    default decided later (by the batching parameters or the machine).
    """
    return dataclasses.field(
        default=default,
        metadata={
            "help": help,
            "kind": kind,
            "flags": flags,
            "default_text": default_text,
        },
    )


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    """Everything `kerascnn serve` can be told, with TF Serving's names."""

    model_base_path: str = _option(
        "saved_models",
        "Folder of <name>/<integer version>/ SavedModels, or one model's "
        "folder of versions.",
        kind="folder",
        flags=("-m", "--model-base-path"),
    )
    model_name: str = _option(
        None, "Serve --model-base-path (a folder of versions) under this name."
    )
    model_config_file: str = _option(
        None,
        "TF Serving model_config_list text file (names, base paths, version "
        "policies, version labels); replaces --model-base-path.",
        kind="file",
    )
    host: str = _option(
        "127.0.0.1",
        "Address to bind (0.0.0.0 exposes the server).",
        flags=("-H", "--host"),
    )
    port: int = _option(
        8500,
        "gRPC port (TF Serving's PredictionService and ModelService); 0 "
        "picks a free one.",
        kind="port",
    )
    rest_api_port: int = _option(
        8501,
        "REST port (and the try-it page); 0 picks a free one.",
        kind="port",
        flags=("-p", "--rest-api-port"),
    )
    ui: bool = _option(
        True,
        "Serve the try-it page at / of the REST port.",
        flags=("--ui/--no-ui",),
    )
    enable_explain: bool = _option(
        False,  # each request costs dozens of forward/backward passes
        "Answer POST /v1/models/<name>:explain with heat maps "
        "(integrated gradients, SmoothGrad); off: 404.",
        flags=("--enable-explain/--disable-explain",),
    )
    all_versions: bool = _option(
        False,
        "Load every version, or only each model's highest.",
        flags=("--all-versions/--latest-version",),
    )
    file_system_poll_wait_seconds: float = _option(
        1.0,
        "Rescan for new versions this often; 0 turns it off.",
        kind="seconds",
    )
    enable_batching: bool = _option(
        False,  # see benchmarks/README.md, "Serving"
        "Merge concurrent requests into one model call.",
        flags=("--enable-batching/--disable-batching",),
    )
    batching_parameters_file: str = _option(
        None,
        "TF Serving BatchingParameters text file (turns batching on).",
        kind="file",
    )
    max_batch_size: int = _option(
        None,
        "Most rows in one batched call.",
        "positive_count",
        default_text="32",
    )
    batch_timeout_micros: int = _option(
        None,
        "Longest a batch waits to fill; 0 runs what is queued as soon as a "
        "worker is free.",
        "count",
        default_text="0",
    )
    num_batch_threads: int = _option(
        None,
        "Threads running model calls.",
        "positive_count",
        default_text="CPU count, >= 2",
    )
    max_enqueued_batches: int = _option(
        None,
        "Closed batches that may wait per model signature; more gets 503.",
        "positive_count",
        default_text="64",
    )
    pad_value: float = _option(
        None,
        "Value that pads variable-length inputs when batching "
        "(pad_variable_length_inputs).",
        default_text="0",
    )
    max_queued_requests: int = _option(
        1024,
        "Requests queued or running per model; more gets 503 at once.",
        "positive_count",
    )
    max_body_bytes: int = _option(
        64 * MiB, "Larger request bodies get 413.", "positive_count"
    )
    max_inflight_body_bytes: int = _option(
        256 * MiB,
        "Request bodies (REST by Content-Length, before reading; gRPC "
        "messages) held at once; past it a request gets 503 at once.",
        "positive_count",
    )
    max_request_rows: int = _option(
        1024,
        "Most rows (batch dimension) in one request, batching or not; "
        "more gets 400.",
        "positive_count",
    )
    max_decoded_pixels: int = _option(
        image_files.MAX_IMAGE_PIXELS,
        "Most pixels (width x height, read from the headers) of all "
        "encoded images in one request; more gets 400 before decoding.",
        "positive_count",
    )
    max_tensor_bytes: int = _option(
        256 * MiB,
        "Most bytes the input arrays of one request may take (a gRPC "
        "tensor's claimed shape is checked before it is expanded).",
        "positive_count",
    )
    max_connections: int = _option(
        1000,
        "Open REST connections at once; past it a new connection replaces "
        "the longest-idle one, or gets 503 when all are busy.",
        "positive_count",
    )
    grpc_max_concurrent_rpcs: int = _option(
        64,
        "gRPC calls in progress at once; more get RESOURCE_EXHAUSTED at once.",
        "positive_count",
    )
    request_timeout_seconds: float = _option(
        30.0, "Deadline per request; 504 after it.", "positive_seconds"
    )
    malloc_arena_max: int = _option(
        2,
        "glibc malloc arenas the server's threads share (MALLOC_ARENA_MAX); "
        "few keep little memory after a burst of large requests. 0 keeps "
        "glibc's default (8 per core).",
        "count",
    )
    max_num_load_retries: int = _option(
        5, "Retries of a version that fails to load.", "count"
    )
    load_retry_interval_micros: int = _option(
        60_000_000, "Wait between those retries.", "count"
    )
    servable_versions_always_present: bool = _option(
        False,
        "Keep serving a model's last version when its version folders "
        "vanish (TF Serving's flag of that name).",
    )
    grpc_max_message_bytes: int = _option(
        64 * MiB,
        "Largest gRPC request or response (gRPC's own 4 MB default is too "
        "small for image batches).",
        "positive_count",
    )
    enable_serialization_as_tensor_content: bool = _option(
        False,
        "gRPC outputs in tensor_content instead of float_val, int64_val, "
        "... (TF Serving's flag of that name).",
    )
    allow_version_labels_for_unavailable_models: bool = _option(
        False,
        "Let a version label of --model-config-file name a version that is "
        "not loaded yet (TF Serving's flag of that name).",
    )
    cors_allowed_origins: str = _option(
        "",
        "Comma-separated origins (or '*') whose browsers may call the REST "
        "API; empty (the default) sends no CORS headers.",
    )
    idle_timeout_seconds: float = _option(
        75.0,
        "Close a connection idle, or whose request headers are not complete, "
        "for this long (slow clients).",
        "positive_seconds",
    )
    body_timeout_seconds: float = _option(
        60.0,
        "A request body that takes longer (or is shorter than its "
        "Content-Length) gets 408 and the connection is closed.",
        "positive_seconds",
    )
    verbose: bool = _option(
        False, "Log every request to stderr.", flags=("-v", "--verbose")
    )

    def validate(self):
        """Checks every numeric setting; returns `self`."""
        for field in dataclasses.fields(self):
            _check(
                field.name, getattr(self, field.name), field.metadata["kind"]
            )
        return self

    def batching(self):
        """`BatchingParameters`, or `None` when batching is off."""
        overrides = {
            "max_batch_size": self.max_batch_size,
            "batch_timeout_micros": self.batch_timeout_micros,
            "num_batch_threads": self.num_batch_threads,
            "max_enqueued_batches": self.max_enqueued_batches,
            "pad_value": self.pad_value,
        }
        if self.batching_parameters_file:
            return read_batching_parameters(
                self.batching_parameters_file, **overrides
            )
        if not self.enable_batching:
            return None
        given = {k: x for k, x in overrides.items() if x is not None}
        return BatchingParameters(enabled=True, **given)

    def cors_origins(self):
        """`--cors-allowed-origins` as a list."""
        return [
            o.strip() for o in self.cors_allowed_origins.split(",") if o.strip()
        ]


DEFAULTS = ServeOptions()


def _check(name, value, kind):
    if value is None or kind in (None, "file", "folder"):
        return
    if kind == "port":
        if not (isinstance(value, int) and 0 <= value <= 65535):
            raise ServingError(
                f"`{name}` must be a port number from 0 to 65535. "
                f"Received: {name}={value!r}"
            )
    elif kind in ("count", "positive_count"):
        v.check_positive_int(
            name, value, minimum=0 if kind == "count" else 1, error=ServingError
        )
    elif kind == "seconds":
        v.check_non_negative_number(name, value, error=ServingError)
    else:
        v.check_positive_number(name, value, error=ServingError)
