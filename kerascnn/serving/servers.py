"""`build_servers(options)`: the REST and gRPC servers of `kerascnn serve`.

One `ModelServer` (models, versions, queues, batching) behind both APIs,
built from a `ServeOptions`; the CLI only prints and waits.
"""

import dataclasses

from kerascnn.serving.options import ServeOptions


@dataclasses.dataclass
class Servers:
    """What `build_servers` made: bound, not yet serving.

    Attributes:
        model_server: the shared `ModelServer`.
        http: the REST `ServingHTTPServer` (`serve_forever()` runs it).
        grpc: the `GrpcServer` (`start()` runs it).
        batching: the `BatchingParameters` in use, or `None`.
    """

    model_server: object
    http: object
    grpc: object
    batching: object = None

    def close(self):
        """Stops gRPC and closes the REST server and the models."""
        self.grpc.stop()
        self.http.server_close()


def build_servers(options=None):
    """Loads the models and binds the REST and gRPC ports of `options`.

    Raises:
        ServingError: a bad setting, nothing to serve, or a port that
            cannot be bound; nothing is left running.
    """
    from kerascnn.serving.app import make_server
    from kerascnn.serving.core import ModelServer
    from kerascnn.serving.explain import routes as explain_routes
    from kerascnn.serving.grpc_service import GrpcServer
    from kerascnn.serving.ui import routes as ui_routes

    options = (options or ServeOptions()).validate()
    kwargs = options.model_server_kwargs()
    if options.model_config_file:
        model_server = ModelServer.from_config_file(
            options.model_config_file, **kwargs
        )
    else:
        model_server = ModelServer(
            options.model_base_path, model_name=options.model_name, **kwargs
        )
    http = make_server(
        host=options.host,
        port=options.rest_api_port,
        max_body_bytes=options.max_body_bytes,
        access_log=options.verbose,
        model_server=model_server,
        extra_routes=[
            *(ui_routes() if options.ui else ()),
            *explain_routes(options.enable_explain),
        ],
        cors_allowed_origins=options.cors_origins(),
        idle_timeout=options.idle_timeout_seconds,
        body_timeout=options.body_timeout_seconds,
        max_connections=options.max_connections,
    )
    try:
        grpc = GrpcServer(
            model_server,
            options.host,
            options.port,
            max_message_bytes=options.grpc_max_message_bytes,
            serialize_as_tensor_content=(
                options.enable_serialization_as_tensor_content
            ),
            max_concurrent_rpcs=options.grpc_max_concurrent_rpcs,
        )
    except BaseException:
        http.server_close()
        raise
    return Servers(model_server, http, grpc, kwargs["batching"])
