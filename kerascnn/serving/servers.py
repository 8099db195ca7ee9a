"""`build_servers(options)`: the REST and gRPC servers of `kerascnn serve`.

One `ModelServer` (models, versions, queues, batching) behind both APIs,
built from a `ServeOptions`; the CLI only prints and waits.
"""

import dataclasses

from kerascnn.serving.app import make_server
from kerascnn.serving.budget import limit_malloc_arenas
from kerascnn.serving.core import ModelServer
from kerascnn.serving.explain import routes as explain_routes
from kerascnn.serving.grpc_service import GrpcServer
from kerascnn.serving.options import ServeOptions
from kerascnn.serving.ui import routes as ui_routes


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
    options = (options or ServeOptions()).validate()
    # Before the servers' threads exist: they pick their arenas on first use.
    limit_malloc_arenas(options.malloc_arena_max)
    model_server = ModelServer(options)
    http = make_server(
        options,
        model_server=model_server,
        extra_routes=[
            *(ui_routes() if options.ui else ()),
            *explain_routes(options.enable_explain),
        ],
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
    return Servers(model_server, http, grpc, model_server.batching)
