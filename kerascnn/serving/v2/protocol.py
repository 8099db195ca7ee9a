"""The Open Inference Protocol (KServe v2) over a `ModelServer`.

Both v2 front ends (`rest` on the REST port, `grpc_service` on the gRPC
port) turn their wire format into an `InferRequest` and call `infer` or
`infer_async` here; the `ModelServer` does the rest, as for TF Serving's
API: the same models, versions, batching queue, deadlines and metrics
(`protocol` label `v2-rest` or `v2-grpc`).

Which signature a request runs:
    1. the `signature_name` request parameter, when given;
    2. else `serving_default`, when the request's inputs have its input
       names and datatypes;
    3. else the one signature whose inputs they match (a LeNet export's
       `predict_images` for a BYTES `images` input, the tagger's
       `predict_sentences` for a BYTES `sentences` input);
    4. else `serving_default`, whose checks then name what is wrong.
Model metadata describes `serving_default` (over REST, `?signature_name=`
picks another).

Versions are the v1 ones, as strings: `""` is the highest available.
"""

import dataclasses
import time

import kerascnn
from kerascnn.serving import arrays
from kerascnn.serving.budget import is_batched
from kerascnn.serving.errors import BadRequest, NotFound, ServingError
from kerascnn.serving.v2 import tensors as v2_tensors

DEFAULT_SIGNATURE = "serving_default"
PLATFORM = "tensorflow_savedmodel"
SERVER_NAME = "kerascnn"
EXTENSIONS = ("binary_tensor_data",)
REST = "v2-rest"
GRPC = "v2-grpc"
MAX_VERSION = 2**63 - 1
# Request parameters this server reads, and their JSON types.
SIGNATURE_PARAMETER = "signature_name"
TIMEOUT_PARAMETER = "timeout"  # microseconds, as Triton's
# Tensor parameters of extensions this server does not implement
# (classification, shared memory): refused, not ignored.
UNSUPPORTED = ("shared_memory_region", "classification")


def check_supported(parameters, where):
    """`BadRequest` for a tensor parameter of an unserved extension."""
    for key in UNSUPPORTED:
        if key in parameters:
            raise BadRequest(
                f"{where}: parameter {key!r} is not supported by this server."
            )


@dataclasses.dataclass
class InferRequest:
    """A v2 inference request, off the wire.

    Attributes:
        model: the model name.
        version: the version as sent (`""` for the highest).
        id: the request id, echoed in the answer.
        parameters: `{name: value}` of the request's parameters.
        inputs: `tensors.Tensor`s, in request order.
        outputs: the requested output names in order, or `None` for all.
    """

    model: str
    version: str = ""
    id: str = ""
    parameters: dict = dataclasses.field(default_factory=dict)
    inputs: list = dataclasses.field(default_factory=list)
    outputs: list = None


@dataclasses.dataclass
class InferResult:
    """The answer: `outputs` is `{name: np.ndarray}` in answer order."""

    model: str
    version: int
    id: str
    outputs: dict


def parse_version(text):
    """A v2 version string as an int, or `None` for `""` (the highest)."""
    if text is None or text == "":
        return None
    if not (isinstance(text, str) and text.isascii() and text.isdigit()):
        raise BadRequest(
            f"Model version must be an integer; received {text!r}."
        )
    number = int(text)
    if number > MAX_VERSION:
        raise BadRequest(f"Model version {text} does not fit in an int64.")
    return number


# === Health and metadata ===


def server_metadata():
    """`{"name", "version", "extensions"}`."""
    return {
        "name": SERVER_NAME,
        "version": kerascnn.__version__,
        "extensions": list(EXTENSIONS),
    }


def server_ready(model_server):
    """True when every configured model has an available version."""
    return model_server.ready()[0]


def model_ready(model_server, name, version=""):
    """True when `name` (at `version`) can answer now.

    Raises:
        NotFound: a model or version this server does not know.
    """
    number = parse_version(version)
    known, versions, states = model_server.versions.lookup(name)
    if not known:
        model_server.get(name)  # raises NotFound, listing the models
    if number is None:
        return bool(versions)
    if number not in versions and number not in states:
        raise NotFound(f"Model {name!r} has no version {number}.")
    return number in versions


def model_metadata(model_server, name, version="", signature_name=None):
    """`{"name", "versions", "platform", "inputs", "outputs"}`.

    Inputs and outputs are those of `signature_name` (by default
    `serving_default`); `versions` lists every available version.
    """
    loaded = _get(model_server, name, version)
    signature = _named_signature(loaded, signature_name or DEFAULT_SIGNATURE)
    available = sorted(model_server.models().get(name, {}))
    return {
        "name": name,
        "versions": [str(v) for v in available],
        "platform": PLATFORM,
        "inputs": [
            v2_tensors.tensor_metadata(n, s)
            for n, s in signature.inputs.items()
        ],
        "outputs": [
            v2_tensors.tensor_metadata(n, s)
            for n, s in signature.outputs.items()
        ],
    }


def _get(model_server, name, version):
    """The `LoadedVersion`; NotFound messages without TF Serving's
    `Servable not found for request: Specific(...)` prefix."""
    number = parse_version(version)
    try:
        return model_server.get(name, number)
    except NotFound as e:
        message = str(e).removeprefix("Servable not found for request: ")
        if number is not None:
            message = message.removeprefix(f"Specific({name}, {number}): ")
        raise NotFound(message) from None


def _named_signature(loaded, key):
    if key not in loaded.signatures:
        raise BadRequest(
            f"Model {loaded.name!r} has no signature {key!r}. Signatures: "
            f"{', '.join(sorted(loaded.signatures))}."
        )
    return loaded.signatures[key]


# === Inference ===


def _input_datatypes(signature):
    try:
        return {
            n: v2_tensors.datatype_of(s.dtype)
            for n, s in signature.inputs.items()
        }
    except BadRequest:
        return None


def choose_signature(loaded, inputs, signature_name=None):
    """The signature a request runs (see the module doc for the rule)."""
    if signature_name:
        return _named_signature(loaded, signature_name)
    sent = {t.name: t.datatype for t in inputs}
    signatures = loaded.signatures
    default = signatures.get(DEFAULT_SIGNATURE)
    if default is not None and _input_datatypes(default) == sent:
        return default
    found = [s for _, s in sorted(signatures.items())]
    found = [s for s in found if sent and _input_datatypes(s) == sent]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        names = ", ".join(s.name for s in found)
        raise BadRequest(
            f"The inputs fit signatures {names}; choose one with the "
            f"{SIGNATURE_PARAMETER!r} request parameter."
        )
    if default is not None:
        return default
    raise BadRequest(
        f"The inputs {sorted(sent)} fit no signature of model "
        f"{loaded.name!r}; its signatures take: "
        + "; ".join(
            f"{s.name} {sorted(s.inputs)}"
            for _, s in sorted(signatures.items())
        )
        + "."
    )


def parameter(parameters, key, kinds, description):
    """A request parameter of one of the Python types `kinds`, or `None`."""
    value = parameters.get(key)
    if value is None:
        return None
    wrong_bool = isinstance(value, bool) and bool not in kinds
    if wrong_bool or not isinstance(value, kinds):
        raise BadRequest(
            f"Parameter {key!r} must be {description}; received {value!r}."
        )
    return value


def _timeout(parameters):
    micros = parameter(parameters, TIMEOUT_PARAMETER, (int,), "an integer")
    if micros is None or micros == 0:
        return None
    if micros < 0:
        raise BadRequest(
            f"Parameter 'timeout' must be >= 0; received {micros}."
        )
    return micros / 1e6


def prepare(model_server, request, max_bytes):
    """`(version, signature name, feeds, timeout)` of a checked request.

    Sizes are checked (`tensors.check_budget` against the message size,
    the server's `RequestBudget` for rows and bytes) before any array is
    made.
    """
    if not request.model:
        raise BadRequest("The model name is required.")
    if not request.inputs:
        raise BadRequest("The request has no inputs.")
    names = [t.name for t in request.inputs]
    if len(set(names)) != len(names):
        raise BadRequest(f"Inputs are named more than once: {names}.")
    v2_tensors.check_budget(request.inputs, max_bytes)
    signature_name = parameter(
        request.parameters, SIGNATURE_PARAMETER, (str,), "a string"
    )
    timeout = _timeout(request.parameters)
    loaded = _get(model_server, request.model, request.version)
    signature = choose_signature(loaded, request.inputs, signature_name)
    arrays.check_keys(signature, dict.fromkeys(names), f"The inputs {names}")
    for t in request.inputs:  # rows and bytes, before any array is made
        dtype = v2_tensors.numpy_dtype(t.datatype)
        model_server.budget.check_claim(
            t.name,
            t.shape,
            0 if dtype is None else dtype.itemsize,
            batched=is_batched(signature.inputs[t.name]),
        )
    feeds = {
        t.name: v2_tensors.to_array(t, signature.inputs[t.name])
        for t in request.inputs
    }
    check_outputs(signature, request.outputs)
    return loaded.version, signature.name, feeds, timeout


def check_outputs(signature, requested):
    """`BadRequest` for a requested output the signature does not have."""
    for name in requested or ():
        if name not in signature.outputs:
            raise BadRequest(
                f"Signature {signature.name!r} has no output {name!r}. "
                f"Outputs: {', '.join(signature.outputs)}."
            )
    if requested and len(set(requested)) != len(requested):
        raise BadRequest(f"Outputs are requested more than once: {requested}.")


def _result(request, result):
    names = request.outputs or list(result.outputs)
    return InferResult(
        request.model,
        result.version,
        request.id,
        {n: result.outputs[n] for n in names},
    )


def _prepare_counted(model_server, request, max_bytes, protocol):
    """`prepare`, with a refused request counted in the metrics as the
    `ModelServer` counts the ones it answers (by status code)."""
    started = time.perf_counter()
    try:
        return prepare(model_server, request, max_bytes)
    except ServingError as e:
        model_server.metrics.observe_request(
            request.model,
            "",
            "",
            e.status,
            time.perf_counter() - started,
            "predict",
            protocol,
        )
        raise


async def infer_async(model_server, request, max_bytes, protocol=REST):
    """Runs a v2 request on the event loop; returns an `InferResult`."""
    version, signature_name, feeds, timeout = _prepare_counted(
        model_server, request, max_bytes, protocol
    )
    result = await model_server.predict_arrays_async(
        request.model,
        feeds,
        version,
        signature_name,
        timeout,
        protocol=protocol,
    )
    return _result(request, result)


def infer(model_server, request, max_bytes, protocol=GRPC, timeout=None):
    """Runs a v2 request, blocking; `timeout` caps the request's own."""
    version, signature_name, feeds, own = _prepare_counted(
        model_server, request, max_bytes, protocol
    )
    if own is not None:
        timeout = own if timeout is None else min(own, timeout)
    result = model_server.predict_arrays(
        request.model,
        feeds,
        version,
        signature_name,
        timeout,
        protocol=protocol,
    )
    return _result(request, result)
