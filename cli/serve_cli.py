"""`kerascnn serve`: TF Serving's REST and gRPC APIs over SavedModels.

Parses options (TF Serving's flag names, with dashes), builds a
`ModelServer` and serves it on aiohttp until SIGTERM or Ctrl-C, letting
in-flight requests finish. TensorFlow is imported inside the command
only; a `KerasCNNError` (no models, a port in use, a bad config file)
becomes one line on stderr and exit code 1.
"""

import dataclasses

import click

from cli.common import (
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    quiet_tensorflow,
    user_errors,
)
from kerascnn.serving.options import ServeOptions


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


_CLICK_TYPES = {
    "port": click.IntRange(0, 65535),
    "count": NON_NEGATIVE_INT,
    "positive_count": POSITIVE_INT,
    "seconds": click.FloatRange(min=0),
    "positive_seconds": click.FloatRange(min=0, min_open=True),
    "file": click.Path(dir_okay=False, exists=True),
    "folder": click.Path(file_okay=False),
}


def _options_from(settings_class):
    """Click options built from `ServeOptions`' fields: one flag each,
    with the field's default and help (the one home of both)."""

    def decorate(command):
        for field in reversed(dataclasses.fields(settings_class)):
            command = _click_option(field)(command)
        return command

    return decorate


def _click_option(field):
    meta = field.metadata
    flags = meta["flags"] or ("--" + field.name.replace("_", "-"),)
    help_text = meta["help"]
    if meta["default_text"]:
        help_text += f"  [default: {meta['default_text']}]"
    kwargs = dict(default=field.default, help=help_text)
    if field.type is bool and "/" not in flags[-1]:
        kwargs["is_flag"] = True
    elif field.default is not None and field.default != "":
        kwargs["show_default"] = True
    if meta["kind"]:
        kwargs["type"] = _CLICK_TYPES[meta["kind"]]
    elif field.type is float:
        kwargs["type"] = float
    return click.option(*flags, field.name, **kwargs)


@click.command(
    "serve", short_help="Serve SavedModels over TF Serving REST and gRPC."
)
@_options_from(ServeOptions)
def serve_command(**settings):
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

    options = ServeOptions(**settings)
    _check_ports_free(
        options.host,
        {"--rest-api-port": options.rest_api_port, "--port": options.port},
    )
    quiet_tensorflow()
    # Start-up: the servers load TensorFlow, aiohttp and gRPC.
    from kerascnn.serving import build_servers

    logging.basicConfig(format="%(asctime)s %(message)s")
    logging.getLogger("kerascnn.serving").setLevel(
        logging.INFO if options.verbose else logging.WARNING
    )
    with user_errors():
        servers = build_servers(options)
    _serve(servers, options)


def _serve(servers, options):
    """Prints what is served, serves until SIGTERM / Ctrl-C, closes."""
    servers.grpc.start()
    try:
        for name, versions in sorted(servers.model_server.models().items()):
            listed = ", ".join(str(v) for v in sorted(versions))
            click.echo(f"Loaded {name} (versions {listed})")
        batching = servers.batching
        mode = (
            f"batching on (max batch {batching.max_batch_size})"
            if batching
            else "batching off"
        )
        click.echo(f"gRPC (TF Serving's API) on {servers.grpc.address}")
        click.echo(
            f"Open Inference Protocol (KServe v2) on {servers.http.url}/v2 "
            f"and gRPC {servers.grpc.address}"
        )
        if options.ui:
            click.echo(f"Try-it page on {servers.http.url}/")
        click.echo(
            f"Serving on {servers.http.url}/v1/models/<name>, {mode} "
            "(Ctrl-C to stop)"
        )
        servers.http.serve_forever(handle_signals=True)
    except KeyboardInterrupt:
        pass
    finally:
        click.echo("Shutting down.")
        servers.close()
