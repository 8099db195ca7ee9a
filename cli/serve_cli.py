"""`kerascnn serve`: TF Serving's REST and gRPC APIs over SavedModels.

Parses options (TF Serving's flag names, with dashes), builds a
`ModelServer` and serves it on aiohttp until SIGTERM or Ctrl-C, letting
in-flight requests finish. TensorFlow is imported inside the command
only; a `KerasCNNError` (no models, a port in use, a bad config file)
becomes one line on stderr and exit code 1.
"""

import click

from cli.common import (
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    quiet_tensorflow,
    user_errors,
)

DEFAULT_BATCHING = False  # see benchmarks/README.md, "Serving"


def _batching(
    enable,
    parameters_file,
    max_batch_size,
    timeout_micros,
    threads,
    queued,
    pad_value=None,
):
    from kerascnn.serving import BatchingParameters, read_batching_parameters

    overrides = {
        "max_batch_size": max_batch_size,
        "batch_timeout_micros": timeout_micros,
        "num_batch_threads": threads,
        "max_enqueued_batches": queued,
        "pad_value": pad_value,
    }
    if parameters_file:
        return read_batching_parameters(parameters_file, **overrides)
    if not enable:
        return None
    return BatchingParameters(
        enabled=True, **{k: v for k, v in overrides.items() if v is not None}
    )


def _check_ports_free(host, ports):
    """Refuses a port in use before any model loads (which takes seconds)."""
    import socket

    for flag, number in ports.items():
        if not number:
            continue  # 0: the system picks a free one
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, number))
            except socket.gaierror:
                return  # not an IPv4 host: the server reports it
            except OSError as e:
                raise click.ClickException(
                    f"{host}:{number} is in use or not available "
                    f"({e.strerror}); pass another {flag} (0: any free port)."
                ) from None


@click.command(
    "serve", short_help="Serve SavedModels over TF Serving REST and gRPC."
)
@click.option(
    "-m",
    "--model-base-path",
    default="saved_models",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder of <name>/<integer version>/ SavedModels, or one model's "
    "folder of versions.",
)
@click.option(
    "--model-name",
    default=None,
    help="Serve --model-base-path (a folder of versions) under this name.",
)
@click.option(
    "--model-config-file",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="TF Serving model_config_list text file (names, base paths, "
    "version policies); replaces --model-base-path.",
)
@click.option(
    "-H",
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind (0.0.0.0 exposes the server).",
)
@click.option(
    "--port",
    default=8500,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="gRPC port (TF Serving's PredictionService and ModelService); "
    "0 picks a free one.",
)
@click.option(
    "-p",
    "--rest-api-port",
    default=8501,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="REST port (and the try-it page); 0 picks a free one.",
)
@click.option(
    "--ui/--no-ui",
    default=True,
    show_default=True,
    help="Serve the try-it page at / of the REST port.",
)
@click.option(
    "--all-versions/--latest-version",
    default=False,
    show_default=True,
    help="Load every version, or only each model's highest.",
)
@click.option(
    "--file-system-poll-wait-seconds",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Rescan for new versions this often; 0 turns it off.",
)
@click.option(
    "--enable-batching/--disable-batching",
    default=DEFAULT_BATCHING,
    show_default=True,
    help="Merge concurrent requests into one model call.",
)
@click.option(
    "--batching-parameters-file",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="TF Serving BatchingParameters text file (turns batching on).",
)
@click.option(
    "--max-batch-size",
    type=POSITIVE_INT,
    default=None,
    help="Most rows in one batched call.  [default: 32]",
)
@click.option(
    "--batch-timeout-micros",
    type=NON_NEGATIVE_INT,
    default=None,
    help="Longest a batch waits to fill; 0 runs what is queued as soon "
    "as a worker is free.  [default: 0]",
)
@click.option(
    "--num-batch-threads",
    type=POSITIVE_INT,
    default=None,
    help="Threads running model calls.  [default: CPU count, >= 2]",
)
@click.option(
    "--max-enqueued-batches",
    type=POSITIVE_INT,
    default=None,
    help="Closed batches that may wait per model signature; more gets "
    "503.  [default: 64]",
)
@click.option(
    "--max-queued-requests",
    type=POSITIVE_INT,
    default=1024,
    show_default=True,
    help="Requests queued or running per model; more gets 503 at once.",
)
@click.option(
    "--max-body-bytes",
    type=POSITIVE_INT,
    default=64 * 1024 * 1024,
    show_default=True,
    help="Larger request bodies get 413.",
)
@click.option(
    "--request-timeout-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Deadline per request; 504 after it.",
)
@click.option(
    "--max-num-load-retries",
    type=NON_NEGATIVE_INT,
    default=5,
    show_default=True,
    help="Retries of a version that fails to load.",
)
@click.option(
    "--load-retry-interval-micros",
    type=NON_NEGATIVE_INT,
    default=60_000_000,
    show_default=True,
    help="Wait between those retries.",
)
@click.option(
    "--grpc-max-message-bytes",
    type=click.IntRange(min=1),
    default=64 * 1024 * 1024,
    show_default=True,
    help="Largest gRPC request or response (gRPC's own 4 MB default is "
    "too small for image batches).",
)
@click.option(
    "--enable-serialization-as-tensor-content",
    is_flag=True,
    help="gRPC outputs in tensor_content instead of float_val, int64_val, "
    "... (TF Serving's flag of that name).",
)
@click.option(
    "--allow-version-labels-for-unavailable-models",
    is_flag=True,
    help="Let a version label of --model-config-file name a version that "
    "is not loaded yet (TF Serving's flag of that name).",
)
@click.option(
    "--cors-allowed-origins",
    default="",
    help="Comma-separated origins (or '*') whose browsers may call the "
    "REST API; empty (the default) sends no CORS headers.",
)
@click.option(
    "--idle-timeout-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=75.0,
    show_default=True,
    help="Close a connection idle, or whose request headers are not "
    "complete, for this long (slow clients).",
)
@click.option(
    "--body-timeout-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="A request body that takes longer (or is shorter than its "
    "Content-Length) gets 408 and the connection is closed.",
)
@click.option(
    "--pad-value",
    type=float,
    default=None,
    help="Value that pads variable-length inputs when batching "
    "(pad_variable_length_inputs).  [default: 0]",
)
@click.option(
    "-v", "--verbose", is_flag=True, help="Log every request to stderr."
)
def serve_command(
    model_base_path,
    model_name,
    model_config_file,
    host,
    port,
    rest_api_port,
    ui,
    all_versions,
    file_system_poll_wait_seconds,
    enable_batching,
    batching_parameters_file,
    max_batch_size,
    batch_timeout_micros,
    num_batch_threads,
    max_enqueued_batches,
    max_queued_requests,
    max_body_bytes,
    request_timeout_seconds,
    max_num_load_retries,
    load_retry_interval_micros,
    grpc_max_message_bytes,
    enable_serialization_as_tensor_content,
    allow_version_labels_for_unavailable_models,
    cors_allowed_origins,
    idle_timeout_seconds,
    body_timeout_seconds,
    pad_value,
    verbose,
):
    """Serve every model under --model-base-path until SIGTERM / Ctrl-C.

    \b
    Speaks TensorFlow Serving's REST API, so its clients work unchanged
    (/labels/<label> may replace /versions/<v>):
      GET  /v1/models/<name>[/versions/<v>]            status
      GET  /v1/models/<name>[/versions/<v>]/metadata   signatures
      POST /v1/models/<name>[/versions/<v>]:predict    instances / inputs
      POST /v1/models/<name>[/versions/<v>]:classify   examples
      POST /v1/models/<name>[/versions/<v>]:regress    examples
      GET  /monitoring/prometheus/metrics              Prometheus metrics
      GET  /healthz, /readyz                           liveness, readiness
      GET  /                                           try-it page
    and its gRPC API on --port: PredictionService (Predict, Classify,
    Regress, MultiInference, GetModelMetadata) and ModelService
    (GetModelStatus).
    Requests without a version use the highest one. A 503 answer means
    the model's queue is full: retry after a short back-off.
    """
    import logging

    _check_ports_free(host, {"--rest-api-port": rest_api_port, "--port": port})
    quiet_tensorflow()
    from kerascnn.serving import ModelServer, make_server
    from kerascnn.serving.grpc_service import GrpcServer
    from kerascnn.serving.ui import routes as ui_routes

    logging.basicConfig(format="%(asctime)s %(message)s")
    logging.getLogger("kerascnn.serving").setLevel(
        logging.INFO if verbose else logging.WARNING
    )
    with user_errors():
        batching = _batching(
            enable_batching,
            batching_parameters_file,
            max_batch_size,
            batch_timeout_micros,
            num_batch_threads,
            max_enqueued_batches,
            pad_value,
        )
        options = dict(
            version_policy="all" if all_versions else "latest",
            batching=batching,
            num_threads=num_batch_threads,
            max_queued_requests=max_queued_requests,
            request_timeout=request_timeout_seconds,
            poll_seconds=file_system_poll_wait_seconds,
            max_num_load_retries=max_num_load_retries,
            load_retry_interval=load_retry_interval_micros / 1e6,
            allow_version_labels_for_unavailable_models=(
                allow_version_labels_for_unavailable_models
            ),
        )
        if model_config_file:
            model_server = ModelServer.from_config_file(
                model_config_file, **options
            )
        else:
            model_server = ModelServer(
                model_base_path, model_name=model_name, **options
            )
        server = make_server(
            host=host,
            port=rest_api_port,
            max_body_bytes=max_body_bytes,
            access_log=verbose,
            model_server=model_server,
            extra_routes=ui_routes() if ui else (),
            cors_allowed_origins=[
                o.strip() for o in cors_allowed_origins.split(",") if o.strip()
            ],
            idle_timeout=idle_timeout_seconds,
            body_timeout=body_timeout_seconds,
        )
        try:
            grpc_server = GrpcServer(
                model_server,
                host,
                port,
                max_message_bytes=grpc_max_message_bytes,
                serialize_as_tensor_content=(
                    enable_serialization_as_tensor_content
                ),
            )
        except BaseException:
            server.server_close()
            raise
    grpc_server.start()
    try:
        for name, versions in sorted(model_server.models().items()):
            listed = ", ".join(str(v) for v in sorted(versions))
            click.echo(f"Loaded {name} (versions {listed})")
        mode = (
            f"batching on (max batch {batching.max_batch_size})"
            if batching
            else "batching off"
        )
        click.echo(f"gRPC (TF Serving's API) on {grpc_server.address}")
        if ui:
            click.echo(f"Try-it page on {server.url}/")
        click.echo(
            f"Serving on {server.url}/v1/models/<name>, {mode} (Ctrl-C to stop)"
        )
        server.serve_forever(handle_signals=True)
    except KeyboardInterrupt:
        pass
    finally:
        click.echo("Shutting down.")
        grpc_server.stop()
        server.server_close()
