"""`kerascnn serve`: TF Serving's REST API over exported SavedModels.

Parses options, calls `kerascnn.serving.make_server` and serves until
Ctrl-C. TensorFlow is imported inside the command only; a
`KerasCNNError` (no models, a port in use) becomes one line on stderr and
exit code 1.
"""

import click

from cli.common import quiet_tensorflow, user_errors


@click.command("serve", short_help="Serve SavedModels over TF Serving REST.")
@click.option(
    "-m",
    "--model-base-path",
    default="saved_models",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder of <name>/<integer version>/ SavedModels.",
)
@click.option(
    "-H",
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind (0.0.0.0 exposes the server).",
)
@click.option(
    "-p",
    "--port",
    default=8501,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to bind; 0 picks a free one.",
)
@click.option(
    "--all-versions/--latest-version",
    default=False,
    show_default=True,
    help="Load every version, or only each model's highest.",
)
@click.option(
    "--poll-seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Rescan for new versions this often.",
)
@click.option(
    "-v", "--verbose", is_flag=True, help="Log every request to stderr."
)
def serve_command(
    model_base_path, host, port, all_versions, poll_seconds, verbose
):
    """Serve every model under --model-base-path until Ctrl-C.

    \b
    Speaks TensorFlow Serving's REST API, so its clients work unchanged:
      GET  /v1/models/<name>[/versions/<v>]            status
      GET  /v1/models/<name>[/versions/<v>]/metadata   signatures
      POST /v1/models/<name>[/versions/<v>]:predict    instances / inputs
    Requests without a version use the highest one. Encoded images go to
    signature_name "predict_images" as {"b64": "..."} values.
    """
    import logging

    quiet_tensorflow()
    from kerascnn.serving import make_server

    if verbose or poll_seconds:
        logging.basicConfig(format="%(asctime)s %(message)s")
        logging.getLogger("kerascnn.serving").setLevel(
            logging.INFO if verbose else logging.WARNING
        )
    with user_errors():
        server = make_server(
            model_base_path,
            host,
            port,
            version_policy="all" if all_versions else "latest",
            poll_seconds=poll_seconds,
        )
    try:
        for name, versions in sorted(server.model_server.models().items()):
            listed = ", ".join(str(v) for v in sorted(versions))
            click.echo(f"Loaded {name} (versions {listed})")
        click.echo(f"Serving on {server.url}/v1/models/<name> (Ctrl-C to stop)")
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("Shutting down.")
    finally:
        server.server_close()
