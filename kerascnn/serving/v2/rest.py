"""The Open Inference Protocol's REST API, on the TF Serving REST port.

Routes (`<v>` an integer version; without it, the highest):

    GET  /v2                                        server metadata
    GET  /v2/health/live, /v2/health/ready          200, or 400 when not
    GET  /v2/models/<m>[/versions/<v>]              model metadata
    GET  /v2/models/<m>[/versions/<v>]/ready        200, or 400 when not
    POST /v2/models/<m>[/versions/<v>]/infer        inference

An inference body is a JSON object of tensors
(`{"inputs": [{"name", "shape", "datatype", "data"}], "outputs": [...],
"parameters": {...}}`), optionally followed by binary tensors (Triton's
binary data extension): the `Inference-Header-Content-Length` header
gives the JSON's length, and each input with a `binary_data_size`
parameter takes that many bytes, in order, from what follows. Outputs
come back binary when the request asks (`binary_data: true` on an
output, or the request parameter `binary_data_output: true` for all),
with the answer's JSON length in the same header. Errors are
`{"error": "..."}` (400 bad request, 404 unknown model or version, 413
too large, 503 busy, 504 past the deadline).
"""

import numpy as np
from aiohttp import web

try:  # reads numeric `data` without Python lists, as v1's fast path
    import simdjson
except ImportError:  # pragma: no cover (pysimdjson is in install_requires)
    simdjson = None

from kerascnn.serving import arrays, handlers, numeric_json
from kerascnn.serving.errors import BadRequest
from kerascnn.serving.v2 import protocol
from kerascnn.serving.v2 import tensors as v2_tensors

HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_SIZE = "binary_data_size"
BINARY_OUTPUT = "binary_data_output"
BINARY_DATA = "binary_data"
JSON_TYPE = "application/json"
BINARY_TYPE = "application/octet-stream"
# Datatypes whose JSON `data` simdjson copies straight into an array.
FAST_DATATYPES = {
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "INT32": "int32",
    "INT64": "int64",
}


# === The JSON header ===


def load_header(head):
    """The JSON header (bytes) as Python objects, or `BadRequest`.

    With simdjson, an input's `data` of plain numbers for a datatype in
    `FAST_DATATYPES` becomes a flat NumPy array copied out of the parse
    (a 28x28 image's numbers as Python floats cost several times the
    rest of the request); the values are the ones the lists would give.
    Anything else (strings, bools, ragged nesting) stays Python lists,
    and a header simdjson refuses goes through `handlers.parse_json`,
    which words the error.
    """
    document = _simdjson_document(head)
    if document is None:
        return handlers.parse_json(head)
    if not isinstance(document, simdjson.Object):
        raise BadRequest(
            'The inference request must be a JSON object ({"inputs": [...]}).'
        )
    request = {}
    for key in document.keys():
        value = document[key]
        if key == "inputs" and isinstance(value, simdjson.Array):
            request[key] = [_input_entry(entry) for entry in value]
        else:
            request[key] = _plain(value)
    return request


def _simdjson_document(head):
    if simdjson is None or not head:
        return None
    try:
        return simdjson.Parser().parse(head)
    except (ValueError, RuntimeError, TypeError):
        return None


def _plain(value):
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    if isinstance(value, simdjson.Array):
        return value.as_list()
    return value


def _input_entry(entry):
    """One input object, its numeric `data` as a flat array if it can."""
    if not isinstance(entry, simdjson.Object):
        return _plain(entry)
    result = {k: entry[k] if k == "data" else _plain(entry[k]) for k in entry}
    data = result.get("data")
    if isinstance(data, simdjson.Array):
        datatype = result.get("datatype")
        dtype = FAST_DATATYPES.get(
            datatype if isinstance(datatype, str) else ""
        )
        array = numeric_json.numeric_array(data, dtype) if dtype else None
        typed = None if array is None else array.ravel().astype(dtype)
        if typed is None or not _in_range(array, typed):
            result["data"] = data.as_list()  # the general path says why
        else:
            result["data"] = typed
    elif data is not None:
        result["data"] = _plain(data)
    return result


def _in_range(source, typed):
    """False when narrowing `source` to `typed` overflowed (1e39 as
    float32); the general path then refuses it with its message."""
    try:
        arrays.check_range("", source, typed)
    except BadRequest:
        return False
    return True


# === Bodies to requests ===


def _object(value, where):
    if not isinstance(value, dict):
        raise BadRequest(
            f"{where} must be a JSON object; received {type(value).__name__}."
        )
    return value


def _parameters(entry, where):
    params = _object(entry.get("parameters", {}), f"{where} 'parameters'")
    protocol.check_supported(params, where)
    return params


def _header_length(value, size):
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or int(value) > size:
        raise BadRequest(
            f"{HEADER_LENGTH} must be an integer from 0 to the body's "
            f"{size} bytes; received {value!r}."
        )
    return int(value)


def _input(entry, binary, offset):
    """`(Tensor, new offset)` of one JSON input; raw bytes from `binary`."""
    entry = _object(entry, "Each input")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest("Each input needs a 'name' string.")
    datatype = entry.get("datatype")
    if datatype not in v2_tensors.DATATYPES.values():
        raise BadRequest(
            f"Input {name!r}: unknown datatype {datatype!r}. Datatypes: "
            f"{', '.join(sorted(set(v2_tensors.DATATYPES.values())))}."
        )
    shape = v2_tensors.parse_shape(name, entry.get("shape"))
    params = _parameters(entry, f"Input {name!r}")
    size = protocol.parameter(params, BINARY_SIZE, (int,), "an integer")
    tensor = v2_tensors.Tensor(name, datatype, shape)
    if size is None:
        if "data" not in entry:
            raise BadRequest(
                f"Input {name!r} has neither 'data' nor a "
                f"{BINARY_SIZE!r} parameter."
            )
        data = entry["data"]
        if isinstance(data, np.ndarray):  # see `load_header`
            tensor.values = data
        else:
            tensor.data = data
        return tensor, offset
    if "data" in entry:
        raise BadRequest(f"Input {name!r} has both 'data' and binary data.")
    if size < 0 or offset + size > len(binary):
        raise BadRequest(
            f"Input {name!r}: {BINARY_SIZE} {size} runs past the "
            f"{len(binary)} bytes of binary data."
        )
    tensor.raw = binary[offset : offset + size]
    return tensor, offset + size


def _outputs(request, default_binary):
    """`(names or None, {name: binary?})` of the requested outputs."""
    entries = request.get("outputs")
    if entries is None:
        return None, {}
    if not isinstance(entries, list):
        raise BadRequest("'outputs' must be a list of objects.")
    names, binary = [], {}
    for entry in entries:
        entry = _object(entry, "Each output")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest("Each output needs a 'name' string.")
        params = _parameters(entry, f"Output {name!r}")
        flag = protocol.parameter(params, BINARY_DATA, (bool,), "a boolean")
        names.append(name)
        binary[name] = default_binary if flag is None else flag
    return names, binary


def parse_infer(name, version, body, header_length=None):
    """`(InferRequest, {output: binary?}, binary by default?)` of a body.

    Raises:
        BadRequest: malformed JSON or tensors, binary data that does not
            add up.
    """
    view = memoryview(body)
    length = _header_length(header_length, len(view))
    head = view if length is None else view[:length]
    binary = view[len(head) :]
    request = load_header(bytes(head))
    params = _object(request.get("parameters", {}), "'parameters'")
    default_binary = protocol.parameter(
        params, BINARY_OUTPUT, (bool,), "a boolean"
    )
    entries = request.get("inputs")
    if not isinstance(entries, list):
        raise BadRequest("'inputs' must be a list of tensors.")
    inputs, offset = [], 0
    for entry in entries:
        tensor, offset = _input(entry, binary, offset)
        inputs.append(tensor)
    if offset != len(binary):
        raise BadRequest(
            f"{len(binary) - offset} bytes of binary data are not claimed "
            f"by any input's {BINARY_SIZE}."
        )
    request_id = request.get("id", "")
    if not isinstance(request_id, str):
        raise BadRequest("'id' must be a string.")
    names, binary_outputs = _outputs(request, bool(default_binary))
    infer = protocol.InferRequest(
        name, version, request_id, params, inputs, names
    )
    return infer, binary_outputs, bool(default_binary)


# === Answers ===


def format_infer(result, binary_outputs, default_binary):
    """`(body bytes, JSON header length or None)` of an `InferResult`."""
    outputs, blobs = [], []
    for name, array in result.outputs.items():
        entry = {
            "name": name,
            "datatype": v2_tensors.output_datatype(array),
            "shape": list(array.shape),
        }
        if binary_outputs.get(name, default_binary):
            blob = v2_tensors.to_raw(array)
            entry["parameters"] = {BINARY_SIZE: len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = v2_tensors.to_json_data(name, array)
        outputs.append(entry)
    answer = {
        "model_name": result.model,
        "model_version": str(result.version),
        "outputs": outputs,
    }
    if result.id:
        answer["id"] = result.id
    head = handlers.dumps(answer)
    if not blobs:
        return head, None
    return b"".join([head, *blobs]), len(head)


# === Routes ===


class Routes:
    """The v2 handlers for one `ModelServer`.

    Args:
        model_server: the `ModelServer`.
        held_body: `async with held_body(request) as body`, the REST
            app's body reader (its size limit, timeout and bodies in
            flight apply to v2 alike).
        max_bytes: the tensors' size budget (the REST body limit).
    """

    def __init__(self, model_server, held_body, max_bytes):
        self.model_server = model_server
        self.held_body = held_body
        self.max_bytes = int(max_bytes)

    @staticmethod
    def _model(request):
        info = request.match_info
        return info["model"], info.get("version", "")

    async def server_metadata(self, request):
        return _json(200, protocol.server_metadata())

    async def live(self, request):
        return _json(200, {"live": True})

    async def ready(self, request):
        ready = protocol.server_ready(self.model_server)
        return _json(200 if ready else 400, {"ready": ready})

    async def model_metadata(self, request):
        name, version = self._model(request)
        signature_name = request.query.get(protocol.SIGNATURE_PARAMETER)
        answer = protocol.model_metadata(
            self.model_server, name, version, signature_name
        )
        return _json(200, answer)

    async def model_ready(self, request):
        name, version = self._model(request)
        ready = protocol.model_ready(self.model_server, name, version)
        return _json(200 if ready else 400, {"name": name, "ready": ready})

    async def infer(self, request):
        name, version = self._model(request)
        async with self.held_body(request) as body:
            parsed = await self.model_server.parse_off_loop(
                body,
                parse_infer,
                name,
                version,
                body,
                request.headers.get(HEADER_LENGTH),
            )
            infer, binary_outputs, default_binary = parsed
            result = await protocol.infer_async(
                self.model_server, infer, self.max_bytes, protocol.REST
            )
        payload, length = format_infer(result, binary_outputs, default_binary)
        if length is None:
            return web.Response(body=payload, content_type=JSON_TYPE)
        return web.Response(
            body=payload,
            content_type=BINARY_TYPE,
            headers={HEADER_LENGTH: str(length)},
        )

    def route_table(self):
        """The `web.RouteDef`s, with and without `/versions/<v>`."""
        table = [
            web.get("/v2", self.server_metadata),
            web.get("/v2/health/live", self.live),
            web.get("/v2/health/ready", self.ready),
        ]
        for model in (
            "/v2/models/{model}",
            "/v2/models/{model}/versions/{version}",
        ):
            table += [
                web.get(model, self.model_metadata),
                web.get(f"{model}/ready", self.model_ready),
                web.post(f"{model}/infer", self.infer),
            ]
        return table


def _json(status, answer):
    return web.Response(
        status=status, body=handlers.dumps(answer), content_type=JSON_TYPE
    )


def routes(model_server, held_body, max_bytes):
    """The v2 `web.RouteDef`s for `make_app`."""
    return Routes(model_server, held_body, max_bytes).route_table()
