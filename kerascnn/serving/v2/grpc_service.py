"""The Open Inference Protocol's gRPC service, beside TF Serving's.

`inference.GRPCInferenceService` with ServerLive, ServerReady,
ModelReady, ServerMetadata, ModelMetadata and ModelInfer, on the same
`grpc.Server` (and port) as `tensorflow.serving.PredictionService`. The
messages are Triton's (`inference_pb`, generated from its
`grpc_service.proto`), so `tritonclient.grpc` and any other v2 client
work unchanged.

ModelInfer takes each input's values from `raw_input_contents` (in input
order) or from its typed `contents`, and answers with
`raw_output_contents`, as Triton does. Errors use the status codes of
TF Serving's services (`INVALID_ARGUMENT`, `NOT_FOUND`, `UNAVAILABLE`,
`DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED`).
"""

import grpc
import numpy as np

from kerascnn.serving.errors import BadRequest
from kerascnn.serving.grpc_status import deadline_seconds, rpc
from kerascnn.serving.v2 import inference_pb, protocol
from kerascnn.serving.v2 import tensors as v2_tensors

# InferTensorContents' field for each datatype (Triton's proto).
CONTENTS_FIELDS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
METHODS = {
    "ServerLive": ("ServerLiveRequest", "ServerLiveResponse"),
    "ServerReady": ("ServerReadyRequest", "ServerReadyResponse"),
    "ModelReady": ("ModelReadyRequest", "ModelReadyResponse"),
    "ServerMetadata": ("ServerMetadataRequest", "ServerMetadataResponse"),
    "ModelMetadata": ("ModelMetadataRequest", "ModelMetadataResponse"),
    "ModelInfer": ("ModelInferRequest", "ModelInferResponse"),
}


def _parameter_value(proto):
    which = proto.WhichOneof("parameter_choice")
    return None if which is None else getattr(proto, which)


def _parameters(params_map):
    return {k: _parameter_value(v) for k, v in params_map.items()}


def infer_request(proto):
    """A `protocol.InferRequest` of a `ModelInferRequest`."""
    raw = list(proto.raw_input_contents)
    if raw and len(raw) != len(proto.inputs):
        raise BadRequest(
            f"raw_input_contents has {len(raw)} entries for "
            f"{len(proto.inputs)} inputs; it needs one per input."
        )
    inputs = []
    for i, entry in enumerate(proto.inputs):
        protocol.check_supported(entry.parameters, f"Input {entry.name!r}")
        shape = v2_tensors.parse_shape(entry.name, list(entry.shape))
        tensor = v2_tensors.Tensor(entry.name, entry.datatype, shape)
        if entry.datatype not in v2_tensors.DATATYPES.values():
            raise BadRequest(
                f"Input {entry.name!r}: unknown datatype {entry.datatype!r}."
            )
        if raw:
            if entry.HasField("contents"):
                raise BadRequest(
                    f"Input {entry.name!r} has both contents and "
                    "raw_input_contents."
                )
            tensor.raw = raw[i]
        else:
            tensor.values = _contents(entry)
        inputs.append(tensor)
    for output in proto.outputs:
        protocol.check_supported(output.parameters, f"Output {output.name!r}")
    outputs = [o.name for o in proto.outputs] or None
    return protocol.InferRequest(
        proto.model_name,
        proto.model_version,
        proto.id,
        _parameters(proto.parameters),
        inputs,
        outputs,
    )


def _contents(entry):
    field = CONTENTS_FIELDS.get(entry.datatype)
    if field is None:
        raise BadRequest(
            f"Input {entry.name!r}: {entry.datatype} values must be sent in "
            "raw_input_contents."
        )
    values = getattr(entry.contents, field)
    if entry.datatype == v2_tensors.BYTES:
        array = np.empty(len(values), dtype=object)
        array[:] = list(values)
        return array
    dtype = v2_tensors.numpy_dtype(entry.datatype)
    return np.asarray(values, dtype=dtype.newbyteorder("="))


class InferenceService:
    """`inference.GRPCInferenceService` on a `ModelServer`.

    Args:
        model_server: the `ModelServer`.
        max_bytes: the tensors' size budget (the gRPC message limit).
    """

    def __init__(self, model_server, max_bytes):
        self.model_server = model_server
        self.max_bytes = int(max_bytes)

    @rpc
    def ServerLive(self, request, context):  # noqa: N802 (gRPC's names)
        return inference_pb.ServerLiveResponse(live=True)

    @rpc
    def ServerReady(self, request, context):  # noqa: N802
        ready = protocol.server_ready(self.model_server)
        return inference_pb.ServerReadyResponse(ready=ready)

    @rpc
    def ModelReady(self, request, context):  # noqa: N802
        ready = protocol.model_ready(
            self.model_server, request.name, request.version
        )
        return inference_pb.ModelReadyResponse(ready=ready)

    @rpc
    def ServerMetadata(self, request, context):  # noqa: N802
        return inference_pb.ServerMetadataResponse(**protocol.server_metadata())

    @rpc
    def ModelMetadata(self, request, context):  # noqa: N802
        answer = protocol.model_metadata(
            self.model_server, request.name, request.version
        )
        response = inference_pb.ModelMetadataResponse(
            name=answer["name"],
            versions=answer["versions"],
            platform=answer["platform"],
        )
        for key in ("inputs", "outputs"):
            for tensor in answer[key]:
                getattr(response, key).add(**tensor)
        return response

    @rpc
    def ModelInfer(self, request, context):  # noqa: N802
        with self.model_server.bodies.hold(request.ByteSize()):
            result = protocol.infer(
                self.model_server,
                infer_request(request),
                self.max_bytes,
                protocol.GRPC,
                timeout=deadline_seconds(context),
            )
        response = inference_pb.ModelInferResponse(
            model_name=result.model,
            model_version=str(result.version),
            id=result.id,
        )
        for name, array in result.outputs.items():
            response.outputs.add(
                name=name,
                datatype=v2_tensors.output_datatype(array),
                shape=list(array.shape),
            )
            response.raw_output_contents.append(v2_tensors.to_raw(array))
        return response


def add_service(server, model_server, max_bytes):
    """Registers `GRPCInferenceService` for `model_server` on `server`."""
    service = InferenceService(model_server, max_bytes)
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            getattr(service, name),
            request_deserializer=getattr(inference_pb, request).FromString,
            response_serializer=getattr(
                inference_pb, response
            ).SerializeToString,
        )
        for name, (request, response) in METHODS.items()
    }
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                inference_pb.SERVICE_NAME, handlers
            ),
        )
    )
    return service
