"""TensorFlow Serving's gRPC API over the same `ModelServer` as REST.

    >>> from kerascnn.serving.grpc_service import GrpcServer
    >>> grpc_server = GrpcServer(model_server, "127.0.0.1", 8500).start()
    >>> grpc_server.stop()

Serves `tensorflow.serving.PredictionService` (`Predict`,
`GetModelMetadata`) and `tensorflow.serving.ModelService`
(`GetModelStatus`) with the protos of `tensorflow-serving-api`, so a
client written for TF Serving (its stubs, `tf.make_tensor_proto` inputs,
`tf.make_ndarray` on the outputs) works unchanged. Requests go through
`ModelServer.predict_arrays`: the same models, versions, batching queue,
deadlines and metrics as the REST side.

Errors use TF Serving's status codes: `INVALID_ARGUMENT` (bad input, a
wrong dtype, an unknown signature), `NOT_FOUND` (unknown model or
version), `UNAVAILABLE` (queue full, nothing loaded yet),
`DEADLINE_EXCEEDED` (the client's deadline or the server's). `Classify`,
`Regress`, `MultiInference` and `HandleReloadConfigRequest` answer
`UNIMPLEMENTED`: kerascnn's SavedModels have predict signatures only.
"""

import functools
import logging
from concurrent import futures

import grpc

from kerascnn.serving.errors import (
    BadRequest,
    DeadlineExceeded,
    NotFound,
    PayloadTooLarge,
    ServingError,
    Unavailable,
)

logger = logging.getLogger("kerascnn.serving")

DEFAULT_GRPC_PORT = 8500
DEFAULT_WORKERS = 32
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
SIGNATURE_DEF_FIELD = "signature_def"
STATUS_CODES = (
    (BadRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
    (DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (PayloadTooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
)
PREDICT_ONLY = (
    "kerascnn serve implements Predict only: its SavedModels have predict "
    "signatures, no classify or regress signature. Send a PredictRequest "
    "(signature_name e.g. 'serving_default' or 'predict_images')."
)


def status_code(error):
    """The gRPC status code TF Serving uses for a `ServingError`."""
    for kind, code in STATUS_CODES:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


def _rpc(method):
    """Turns `ServingError`s into gRPC status codes; logs real bugs."""

    @functools.wraps(method)
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except ServingError as e:
            context.abort(status_code(e), str(e))
        except Exception as e:  # a bug must not take the server down
            logger.exception("Internal error in gRPC %s", method.__name__)
            context.abort(
                grpc.StatusCode.INTERNAL,
                f"Internal error: {type(e).__name__}: {e}",
            )

    return wrapper


# === Protos <-> the ModelServer's arguments ===


def model_spec_args(spec):
    """`(name, version or None)` from a `ModelSpec`."""
    if not spec.name:
        raise BadRequest("model_spec.name is required.")
    if spec.WhichOneof("version_choice") == "version_label":
        raise BadRequest(
            f"Version labels are not supported (received "
            f"{spec.version_label!r}); pass model_spec.version or leave it "
            "out for the highest version."
        )
    if spec.HasField("version"):
        return spec.name, int(spec.version.value)
    return spec.name, None


def input_arrays(signature, tensor_protos):
    """`{name: np.ndarray}` from a request's `TensorProto`s.

    The dtype must be the signature's, exactly, as TF Serving requires
    (it does not convert a double into a float input).
    """
    import tensorflow as tf

    arrays = {}
    for key, proto in tensor_protos.items():
        spec = signature.inputs.get(key)
        if spec is not None and proto.dtype != spec.dtype.as_datatype_enum:
            sent = (
                tf.dtypes.as_dtype(proto.dtype).name
                if proto.dtype
                else ("invalid")
            )
            raise BadRequest(
                f"Expects input {key!r} to be {spec.dtype.name} but {sent} "
                "is provided."
            )
        try:
            arrays[key] = tf.make_ndarray(proto)
        except (TypeError, ValueError) as e:
            raise BadRequest(f"Cannot parse input {key!r}: {e}") from None
    return arrays


def output_protos(outputs, output_filter=()):
    """`{name: TensorProto}`, only `output_filter`'s names when given."""
    import tensorflow as tf

    wanted = list(output_filter) or sorted(outputs)
    unknown = [n for n in wanted if n not in outputs]
    if unknown:
        raise BadRequest(
            f"output tensor alias not found in signature: {unknown[0]!r}. "
            f"Outputs: {', '.join(sorted(outputs))}."
        )
    return {n: tf.make_tensor_proto(outputs[n]) for n in wanted}


def _timeout(context):
    """Seconds left before the client's deadline, or `None`."""
    remaining = context.time_remaining()
    if remaining is None or remaining > 10**8:  # no deadline set
        return None
    if remaining <= 0:
        raise DeadlineExceeded("The request's deadline has passed.")
    return remaining


# === The services ===


class PredictionService:
    """`tensorflow.serving.PredictionService` on a `ModelServer`."""

    def __init__(self, model_server):
        self.model_server = model_server

    @_rpc
    def Predict(self, request, context):  # noqa: N802 (gRPC's names)
        from tensorflow_serving.apis import predict_pb2

        name, version = model_spec_args(request.model_spec)
        signature_name = request.model_spec.signature_name or None
        signature = self.model_server.signature(name, version, signature_name)
        inputs = input_arrays(signature, request.inputs)
        result = self.model_server.predict_arrays(
            name, inputs, version, signature_name, timeout=_timeout(context)
        )
        response = predict_pb2.PredictResponse()
        response.model_spec.name = result.model
        response.model_spec.version.value = int(result.version)
        response.model_spec.signature_name = result.signature_name
        protos = output_protos(result.outputs, request.output_filter)
        for key, proto in protos.items():
            response.outputs[key].CopyFrom(proto)
        return response

    @_rpc
    def GetModelMetadata(self, request, context):  # noqa: N802
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_metadata_pb2

        name, version = model_spec_args(request.model_spec)
        fields = list(request.metadata_field)
        if not fields:
            raise BadRequest(
                "GetModelMetadataRequest must specify at least one "
                f"metadata_field ({SIGNATURE_DEF_FIELD!r})."
            )
        for field in fields:
            if field != SIGNATURE_DEF_FIELD:
                raise BadRequest(
                    f"Metadata field {field} is not supported; the only "
                    f"one is {SIGNATURE_DEF_FIELD!r}."
                )
        rest = self.model_server.metadata(name, version)
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        json_format.ParseDict(
            rest["metadata"][SIGNATURE_DEF_FIELD], signature_defs
        )
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = name
        response.model_spec.version.value = int(rest["model_spec"]["version"])
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_defs)
        return response

    def Classify(self, request, context):  # noqa: N802
        context.abort(grpc.StatusCode.UNIMPLEMENTED, PREDICT_ONLY)

    def Regress(self, request, context):  # noqa: N802
        context.abort(grpc.StatusCode.UNIMPLEMENTED, PREDICT_ONLY)

    def MultiInference(self, request, context):  # noqa: N802
        context.abort(grpc.StatusCode.UNIMPLEMENTED, PREDICT_ONLY)


class ModelService:
    """`tensorflow.serving.ModelService`: `GetModelStatus`."""

    def __init__(self, model_server):
        self.model_server = model_server

    @_rpc
    def GetModelStatus(self, request, context):  # noqa: N802
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_status_pb2

        name, version = model_spec_args(request.model_spec)
        rest = self.model_server.status(name, version)
        return json_format.ParseDict(
            rest, get_model_status_pb2.GetModelStatusResponse()
        )

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "kerascnn serve does not reload its model config over gRPC; it "
            "polls --model-base-path for new versions instead.",
        )


def add_services(server, model_server):
    """Registers both services for `model_server` on a `grpc.Server`."""
    from tensorflow_serving.apis import (
        model_service_pb2_grpc,
        prediction_service_pb2_grpc,
    )

    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(model_server), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelService(model_server), server
    )


class GrpcServer:
    """A `grpc.server` bound at construction (port 0 picks a free one).

    Args:
        model_server: the `ModelServer` (shared with the REST server).
        host: address to bind. Defaults to `"127.0.0.1"`.
        port: port to bind. Defaults to `8500` (TF Serving's).
        max_workers: threads answering RPCs; each waits on the model's
            queue, so batching merges their requests. Defaults to `32`.
        max_message_bytes: largest request or response. Defaults to 64 MiB.

    Raises:
        ServingError: the address cannot be bound.
    """

    def __init__(
        self,
        model_server,
        host="127.0.0.1",
        port=DEFAULT_GRPC_PORT,
        max_workers=DEFAULT_WORKERS,
        max_message_bytes=MAX_MESSAGE_BYTES,
    ):
        self.model_server = model_server
        self.host = host
        options = [
            ("grpc.max_receive_message_length", int(max_message_bytes)),
            ("grpc.max_send_message_length", int(max_message_bytes)),
            ("grpc.so_reuseport", 0),
        ]
        self._server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=max_workers, thread_name_prefix="kerascnn-grpc"
            ),
            options=options,
        )
        add_services(self._server, model_server)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self.port = self._server.add_insecure_port(address)
        except RuntimeError as e:
            self.port = 0
            reason = f": {e}"
        else:
            reason = ""
        if not self.port:
            raise ServingError(
                f"Cannot listen for gRPC on {address}{reason} (port in use?)"
            )

    @property
    def address(self):
        """`host:port` actually bound, for `grpc.insecure_channel`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self):
        self._server.start()
        return self

    def stop(self, grace=5.0):
        """Stops accepting; in-flight RPCs get `grace` seconds to finish."""
        self._server.stop(grace).wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
