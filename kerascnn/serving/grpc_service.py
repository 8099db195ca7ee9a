"""TensorFlow Serving's gRPC API over the same `ModelServer` as REST.

    >>> from kerascnn.serving.grpc_service import GrpcServer
    >>> grpc_server = GrpcServer(model_server, "127.0.0.1", 8500).start()
    >>> grpc_server.stop()

Serves `tensorflow.serving.PredictionService` (`Predict`, `Classify`,
`Regress`, `MultiInference`, `GetModelMetadata`) and
`tensorflow.serving.ModelService` (`GetModelStatus`) with the protos of
`tensorflow-serving-api`, so a client written for TF Serving (its stubs,
`tf.make_tensor_proto` inputs, `outputs[...].float_val` or
`tf.make_ndarray` on the outputs) works unchanged. Requests go through
the `ModelServer`: the same models, versions, labels, batching queue,
deadlines and metrics as the REST side.

Outputs fill the typed value fields (`float_val`, `int64_val`,
`string_val`, ...) as TF Serving does by default; `tensor_content` only
with `serialize_as_tensor_content` (TF Serving's
`--enable_serialization_as_tensor_content`).

Errors use TF Serving's status codes: `INVALID_ARGUMENT` (bad input, a
wrong dtype, an unknown signature or label), `NOT_FOUND` (unknown model
or version), `UNAVAILABLE` (queue full, nothing loaded yet),
`DEADLINE_EXCEEDED` (the client's deadline or the server's).
`HandleReloadConfigRequest` answers `UNIMPLEMENTED`.
"""

from concurrent import futures

import grpc
import numpy as np
import tensorflow as tf

from kerascnn.serving import inference
from kerascnn.serving.budget import is_batched
from kerascnn.serving.errors import (
    BadRequest,
    ServingError,
)
from kerascnn.serving.grpc_status import deadline_seconds, rpc
from kerascnn.serving.options import DEFAULTS
from kerascnn.serving.v2 import grpc_service as v2_grpc

DEFAULT_GRPC_PORT = DEFAULTS.port
DEFAULT_WORKERS = 32
MAX_MESSAGE_BYTES = DEFAULTS.grpc_max_message_bytes
SIGNATURE_DEF_FIELD = "signature_def"
DEFAULT_SIGNATURE = "serving_default"
# TensorProto's typed value field per dtype name (TF's tensor.proto).
VALUE_FIELDS = {
    "float32": "float_val",
    "float64": "double_val",
    "int32": "int_val",
    "int16": "int_val",
    "int8": "int_val",
    "uint8": "int_val",
    "uint16": "int_val",
    "int64": "int64_val",
    "uint32": "uint32_val",
    "uint64": "uint64_val",
    "bool": "bool_val",
    "float16": "half_val",
    "bfloat16": "half_val",
    "complex64": "scomplex_val",
    "complex128": "dcomplex_val",
}


# === Protos <-> the ModelServer's arguments ===


def model_spec_args(spec):
    """`(name, version or None, label or None)` from a `ModelSpec`."""
    if not spec.name:
        raise BadRequest("model_spec.name is required.")
    which = spec.WhichOneof("version_choice")
    if which == "version_label":
        return spec.name, None, spec.version_label
    if which == "version":
        return spec.name, int(spec.version.value), None
    return spec.name, None, None


def tensor_proto(array, as_content=False):
    """A `TensorProto` of an output, as TF Serving writes it.

    The typed value field of its dtype (`float_val`, `int64_val`,
    `string_val`, ...) by default, every value written out;
    `tensor_content` (raw little-endian bytes) with `as_content`.
    """
    from tensorflow.core.framework import tensor_pb2

    array = np.asarray(array)
    if array.dtype.kind in "OSU":
        dtype = tf.string
    else:
        dtype = tf.dtypes.as_dtype(array.dtype)
    proto = tensor_pb2.TensorProto(dtype=dtype.as_datatype_enum)
    for size in array.shape:
        proto.tensor_shape.dim.add().size = int(size)
    flat = array.reshape(-1)
    if dtype == tf.string:
        proto.string_val.extend(
            v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in flat
        )
    elif as_content:
        proto.tensor_content = np.ascontiguousarray(
            flat, dtype=flat.dtype.newbyteorder("<")
        ).tobytes()
    elif dtype.name in ("float16", "bfloat16"):
        proto.half_val.extend(flat.view(np.uint16).tolist())
    elif dtype.name in ("complex64", "complex128"):
        field = getattr(proto, VALUE_FIELDS[dtype.name])
        field.extend(np.stack([flat.real, flat.imag], -1).reshape(-1).tolist())
    else:
        getattr(proto, VALUE_FIELDS[dtype.name]).extend(flat.tolist())
    return proto


def _value_count(proto, dtype):
    """How many elements the typed value fields of `proto` hold."""
    if dtype == "string":
        return len(proto.string_val)
    field = VALUE_FIELDS.get(dtype)
    if field is None:
        return None
    count = len(getattr(proto, field))
    return count // 2 if dtype in ("complex64", "complex128") else count


def check_claim(key, proto, spec, budget):
    """Checks a `TensorProto`'s claimed shape before it is expanded.

    The claimed size must fit the `RequestBudget` (rows and bytes), and
    the values present must match it: `tensor_content` of exactly its
    bytes, or a typed value field of all its values, one (TensorFlow
    repeats it) or none (zeros).

    Raises:
        BadRequest: the claim and the budget or the values disagree.
    """

    try:
        dtype = tf.dtypes.as_dtype(proto.dtype)
    except TypeError:
        raise BadRequest(
            f"Input {key!r} has an invalid dtype ({proto.dtype})."
        ) from None
    shape = [int(d.size) for d in proto.tensor_shape.dim]
    item_size = 0 if dtype == tf.string else dtype.size
    count = budget.check_claim(key, shape, item_size, batched=is_batched(spec))
    if proto.tensor_content:
        if len(proto.tensor_content) != count * item_size:
            raise BadRequest(
                f"Input {key!r} has {len(proto.tensor_content)} bytes of "
                f"tensor_content for shape {shape} of {dtype.name} "
                f"({count * item_size} bytes)."
            )
        return
    present = _value_count(proto, dtype.name)
    if present is not None and present not in (0, 1, count):
        raise BadRequest(
            f"Input {key!r} has {present} values for {count} elements of "
            f"shape {shape} (send all of them, or one to repeat)."
        )


def input_arrays(signature, tensor_protos, budget=None):
    """`{name: np.ndarray}` from a request's `TensorProto`s.

    The dtype must be the signature's, exactly, as TF Serving requires
    (it does not convert a double into a float input). With a
    `RequestBudget`, each claimed shape is checked before it is expanded
    (`check_claim`).
    """

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
        if budget is not None:
            check_claim(key, proto, spec, budget)
        try:
            arrays[key] = tf.make_ndarray(proto)
        except (TypeError, ValueError) as e:
            raise BadRequest(f"Cannot parse input {key!r}: {e}") from None
    return arrays


def output_protos(outputs, output_filter=(), as_content=False):
    """`{name: TensorProto}`, only `output_filter`'s names when given."""
    wanted = list(output_filter) or sorted(outputs)
    unknown = [n for n in wanted if n not in outputs]
    if unknown:
        raise BadRequest(
            f"output tensor alias not found in signature: {unknown[0]!r}. "
            f"Outputs: {', '.join(sorted(outputs))}."
        )
    return {n: tensor_proto(outputs[n], as_content) for n in wanted}


def examples_from_input(input_proto):
    """Serialized examples of a gRPC `tensorflow.serving.Input`."""
    which = input_proto.WhichOneof("kind")
    if which == "example_list":
        serialized = inference.serialize(input_proto.example_list.examples)
    elif which == "example_list_with_context":
        lists = input_proto.example_list_with_context
        serialized = inference.serialize(lists.examples, context=lists.context)
    else:
        serialized = []
    if not serialized:
        raise BadRequest("Input is empty.")
    return serialized


def fill_classification(result_proto, results):
    """Fills a `ClassificationResult` proto."""
    for row in results:
        classifications = result_proto.classifications.add()
        for label, score in row:
            entry = classifications.classes.add()
            entry.label = label
            entry.score = score


def fill_regression(result_proto, values):
    """Fills a `RegressionResult` proto."""
    for value in values:
        result_proto.regressions.add().value = value


def fill_version_status(proto, state):
    """Fills a `ModelVersionStatus` proto from a `VersionState` (its
    state and error code by name, as TF Serving's enums spell them)."""
    from tensorflow.core.protobuf import error_codes_pb2
    from tensorflow_serving.apis import get_model_status_pb2

    proto.version = int(state.version)
    proto.state = get_model_status_pb2.ModelVersionStatus.State.Value(
        state.state
    )
    proto.status.error_code = error_codes_pb2.Code.Value(state.error_code)
    proto.status.error_message = state.error_message


def _fill_model_spec(proto, name, version, signature_name):
    proto.name = name
    proto.version.value = int(version)
    proto.signature_name = signature_name


# === The services ===


class PredictionService:
    """`tensorflow.serving.PredictionService` on a `ModelServer`.

    Args:
        model_server: the `ModelServer`.
        serialize_as_tensor_content: outputs as `tensor_content` instead
            of the typed value fields (TF Serving's
            `--enable_serialization_as_tensor_content`).
    """

    def __init__(self, model_server, serialize_as_tensor_content=False):
        self.model_server = model_server
        self.as_content = bool(serialize_as_tensor_content)

    @rpc
    def Predict(self, request, context):  # noqa: N802 (gRPC's names)
        from tensorflow_serving.apis import predict_pb2

        name, version, label = model_spec_args(request.model_spec)
        signature_name = request.model_spec.signature_name or None
        loaded = self.model_server.get(name, version, label)
        signature = self.model_server.signature(
            name, loaded.version, signature_name
        )
        with self.model_server.bodies.hold(request.ByteSize()):
            inputs = input_arrays(
                signature, request.inputs, self.model_server.budget
            )
            result = self.model_server.predict_arrays(
                name,
                inputs,
                loaded.version,
                signature_name,
                timeout=deadline_seconds(context),
                protocol="grpc",
            )
            del inputs
        response = predict_pb2.PredictResponse()
        _fill_model_spec(
            response.model_spec,
            result.model,
            result.version,
            result.signature_name,
        )
        protos = output_protos(
            result.outputs, request.output_filter, self.as_content
        )
        for key, proto in protos.items():
            response.outputs[key].CopyFrom(proto)
        return response

    @rpc
    def GetModelMetadata(self, request, context):  # noqa: N802
        from tensorflow_serving.apis import get_model_metadata_pb2

        name, version, label = model_spec_args(request.model_spec)
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
        loaded = self.model_server.get(name, version, label)
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        for key, proto in loaded.signature_defs.items():
            signature_defs.signature_def[key].CopyFrom(proto)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = name
        response.model_spec.version.value = int(loaded.version)
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_defs)
        return response

    def _run_examples(self, method, model_spec, serialized, context):
        name, version, label = model_spec_args(model_spec)
        return self.model_server.run_examples(
            method,
            name,
            serialized,
            version,
            model_spec.signature_name or DEFAULT_SIGNATURE,
            timeout=deadline_seconds(context),
            label=label,
            protocol="grpc",
        )

    @rpc
    def Classify(self, request, context):  # noqa: N802
        from tensorflow_serving.apis import classification_pb2

        return self._answer_examples(
            "classify",
            request,
            context,
            classification_pb2.ClassificationResponse(),
            fill_classification,
        )

    @rpc
    def Regress(self, request, context):  # noqa: N802
        from tensorflow_serving.apis import regression_pb2

        return self._answer_examples(
            "regress",
            request,
            context,
            regression_pb2.RegressionResponse(),
            fill_regression,
        )

    def _answer_examples(self, api, request, context, response, fill):
        """Classify or Regress: run the request's examples through the
        `api`'s signature and fill `response` (its model spec too)."""
        with self.model_server.bodies.hold(request.ByteSize()):
            serialized = examples_from_input(request.input)
            result = self._run_examples(
                api, request.model_spec, serialized, context
            )
            del serialized
        _fill_model_spec(
            response.model_spec,
            result.model,
            result.version,
            result.signature_name,
        )
        fill(response.result, result.result)
        return response

    @rpc
    def MultiInference(self, request, context):  # noqa: N802
        """Several Classify/Regress tasks on the same examples, as TF
        Serving checks them: one model, distinct signatures."""
        from tensorflow_serving.apis import inference_pb2

        if not request.tasks:
            raise BadRequest("MultiInferenceRequest has no tasks.")
        names = {t.model_spec.name for t in request.tasks}
        if len(names) > 1:
            raise BadRequest(
                "All ModelSpecs in a MultiInferenceRequest must access the "
                "same model name."
            )
        seen = set()
        for task in request.tasks:
            key = task.model_spec.signature_name or DEFAULT_SIGNATURE
            if key in seen:
                raise BadRequest(f"Duplicate evaluation of signature: {key}")
            seen.add(key)
            if task.method_name not in (
                inference.CLASSIFY_METHOD,
                inference.REGRESS_METHOD,
            ):
                raise BadRequest(
                    f"Unsupported signature method_name: {task.method_name}"
                )
        with self.model_server.bodies.hold(request.ByteSize()):
            serialized = examples_from_input(request.input)
            response = inference_pb2.MultiInferenceResponse()
            for task in request.tasks:
                method = (
                    "classify"
                    if task.method_name == inference.CLASSIFY_METHOD
                    else "regress"
                )
                result = self._run_examples(
                    method, task.model_spec, serialized, context
                )
                entry = response.results.add()
                _fill_model_spec(
                    entry.model_spec,
                    result.model,
                    result.version,
                    result.signature_name,
                )
                if method == "classify":
                    fill_classification(
                        entry.classification_result, result.result
                    )
                else:
                    fill_regression(entry.regression_result, result.result)
            return response


class ModelService:
    """`tensorflow.serving.ModelService`: `GetModelStatus`."""

    def __init__(self, model_server):
        self.model_server = model_server

    @rpc
    def GetModelStatus(self, request, context):  # noqa: N802
        from tensorflow_serving.apis import get_model_status_pb2

        name, version, label = model_spec_args(request.model_spec)
        response = get_model_status_pb2.GetModelStatusResponse()
        for state in self.model_server.status(name, version, label):
            fill_version_status(response.model_version_status.add(), state)
        return response

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "kerascnn serve does not reload its model config over gRPC; it "
            "polls --model-base-path for new versions instead.",
        )


def add_services(
    server,
    model_server,
    serialize_as_tensor_content=False,
    max_message_bytes=MAX_MESSAGE_BYTES,
):
    """Registers TF Serving's two services and the Open Inference
    Protocol's `GRPCInferenceService` for `model_server` on `server`."""
    from tensorflow_serving.apis import (
        model_service_pb2_grpc,
        prediction_service_pb2_grpc,
    )

    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(model_server, serialize_as_tensor_content), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelService(model_server), server
    )
    # The Open Inference Protocol (KServe v2) on the same port.
    v2_grpc.add_service(server, model_server, max_message_bytes)


class GrpcServer:
    """A `grpc.server` bound at construction (port 0 picks a free one).

    Args:
        model_server: the `ModelServer` (shared with the REST server).
        host: address to bind. Defaults to `"127.0.0.1"`.
        port: port to bind. Defaults to `8500` (TF Serving's).
        max_workers: threads answering RPCs; each waits on the model's
            queue, so batching merges their requests. Defaults to `32`.
        max_message_bytes: largest request or response (gRPC's own
            default of 4 MB is too small for image batches). Defaults to
            64 MiB.
        serialize_as_tensor_content: outputs as `tensor_content` (TF
            Serving's `--enable_serialization_as_tensor_content`).
        max_concurrent_rpcs: calls in progress at once (running or
            waiting for a worker); more get `RESOURCE_EXHAUSTED` at once,
            before their messages are parsed. Defaults to 64.

    Raises:
        ServingError: the address cannot be bound.
    """

    def __init__(
        self,
        model_server,
        host=DEFAULTS.host,
        port=DEFAULT_GRPC_PORT,
        max_workers=DEFAULT_WORKERS,
        max_message_bytes=MAX_MESSAGE_BYTES,
        serialize_as_tensor_content=False,
        max_concurrent_rpcs=DEFAULTS.grpc_max_concurrent_rpcs,
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
            maximum_concurrent_rpcs=int(max_concurrent_rpcs),
        )
        add_services(
            self._server,
            model_server,
            serialize_as_tensor_content,
            max_message_bytes,
        )
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
