"""`POST /v1/models/<name>[/versions/<v>]:explain`: heat maps from the server.

Off unless `kerascnn serve --enable-explain` (each request costs dozens of
forward and backward passes). When off, the route answers 404 with a JSON
error saying how to turn it on.

Request (the `serving_default` input, as for `:predict`):

    {"instances": [<H x W x C model input>, ...],
     "method": "integrated-gradients" | "smoothgrad",   (default: smoothgrad)
     "class_index": <int>}                               (default: predicted)

Answer:

    {"method": "smoothgrad", "score": "probability",
     "explanations": [{"map": <H x W, in [0, 1]>, "class_index": 7,
                       "probability": 0.98}, ...]}

The server holds SavedModels, not Keras models, so it explains through the
serving signature's input gradients: integrated gradients (50 steps, black
image baseline) and SmoothGrad. Grad-CAM needs a layer's activations,
which a signature does not expose: `kerascnn visualize RUN explain` draws
it from the run or `.keras` file.
"""

import asyncio

from kerascnn.serving.errors import BadRequest, NotFound

ROUTE = r"/v1/models/{tail:.+}:explain"
SERVER_METHODS = ("integrated-gradients", "smoothgrad")
DEFAULT_METHOD = "smoothgrad"
MAX_INSTANCES = 8


def _parse_tail(tail):
    """`(name, version or None, label or None)` of `name[/versions/v]`."""
    parts = tail.split("/")
    if len(parts) == 1:
        return parts[0], None, None
    if len(parts) == 3 and parts[1] == "versions" and parts[2].isdigit():
        return parts[0], int(parts[2]), None
    if len(parts) == 3 and parts[1] == "labels":
        return parts[0], None, parts[2]
    raise BadRequest(f"Malformed explain path: /v1/models/{tail}:explain")


def _parse_body(body):
    import json

    import numpy as np

    try:
        request = json.loads(body or b"{}")
        instances = np.asarray(request["instances"], np.float32)
    except (ValueError, KeyError, TypeError):
        raise BadRequest(
            'The body must be JSON with "instances": a list of model '
            "inputs (H x W x C numbers)."
        ) from None
    method = request.get("method", DEFAULT_METHOD)
    if method not in SERVER_METHODS:
        raise BadRequest(
            f"method must be one of {', '.join(SERVER_METHODS)} on the "
            f"server (Grad-CAM needs the Keras model's layers: use "
            f"`kerascnn visualize RUN explain`). Received: {method!r}"
        )
    if instances.ndim != 4 or not 1 <= len(instances) <= MAX_INSTANCES:
        raise BadRequest(
            f'"instances" must hold 1 to {MAX_INSTANCES} images of rank 3. '
            f"Received shape {instances.shape}."
        )
    return instances, method, request.get("class_index")


def explain_loaded(loaded, instances, method, class_index=None):
    """The answer for one request on a `LoadedVersion`."""
    import numpy as np

    from kerascnn.errors import KerasCNNError
    from kerascnn.metadata import ModelMetadata
    from kerascnn.visualize import Explainer
    from kerascnn.visualize.explain_pictures import _black_baseline

    signature = loaded.module.signatures["serving_default"]
    key = next(iter(signature.structured_input_signature[1]))

    def model(x):
        return signature(**{key: x})["probabilities"]

    options = {}
    if method == "integrated-gradients" and loaded.metadata:
        meta = ModelMetadata.from_dict(loaded.metadata)
        options["baseline"] = _black_baseline(meta)
    try:
        result = Explainer(model).explain(
            instances, method, class_index, **options
        )
    except KerasCNNError as e:
        raise BadRequest(str(e)) from None
    rows = np.arange(len(instances))
    chosen = result.probabilities[rows, result.class_index]
    return {
        "method": method,
        "score": result.score,
        "explanations": [
            {
                "map": np.round(heat, 4).tolist(),
                "class_index": int(c),
                "probability": float(p),
            }
            for heat, c, p in zip(result.maps, result.class_index, chosen)
        ],
    }


def routes(enabled):
    """The `:explain` route for `make_server(extra_routes=)`: working when
    `enabled`, else a 404 that says how to enable it."""
    from aiohttp import web

    from kerascnn.serving.app import (
        MODEL_SERVER,
        _read_body,
        error_response,
        json_response,
    )

    async def explain(request):
        if not enabled:
            return error_response(
                NotFound(
                    "The :explain route is off; start the server with "
                    "`kerascnn serve --enable-explain`."
                )
            )
        name, version, label = _parse_tail(request.match_info["tail"])
        server = request.app[MODEL_SERVER]
        loaded = server.get(name, version, label)
        body = await _read_body(request)
        instances, method, class_index = _parse_body(body)
        answer = await asyncio.to_thread(
            explain_loaded, loaded, instances, method, class_index
        )
        return json_response(200, answer)

    return [web.post(ROUTE, explain)]
