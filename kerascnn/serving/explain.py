"""`POST /v1/models/<name>[/versions/<v>]:explain`: heat maps from the server.

Off unless `kerascnn serve --enable-explain` (each request costs dozens of
forward and backward passes). When off, the route answers 404 with a JSON
error saying how to turn it on.

Request (the `serving_default` input as for `:predict`, or image files
as for `predict_images`):

    {"instances": [<H x W x C model input> or {"b64": <image file>}, ...],
     "method": "gradcam" | "gradcam++" | "integrated-gradients" |
               "smoothgrad",
     "class_index": <int>}                               (default: predicted)

Answer:

    {"method": "gradcam", "score": "logit",
     "explanations": [{"map": <H x W, in [0, 1]>, "class_index": 7,
                       "probability": 0.98}, ...]}

The server holds SavedModels, not Keras models. Grad-CAM and Grad-CAM++
come from the `feature_map_gradients` signature that kerascnn exports for
every model with a spatial feature map (its last feature map and the
gradient of the class logit w.r.t. it, computed in the graph), through the
same `cam_from` as `kerascnn visualize explain`; they are the default
there. Integrated gradients (50 steps, black image baseline) and
SmoothGrad go through the `serving_default` signature's input gradients,
so they work on any image SavedModel; SmoothGrad is the default for one
without `feature_map_gradients` (a flat model, or an older export).
"""

import asyncio
import base64
import binascii
import json

import numpy as np
import tensorflow as tf
from aiohttp import web

from kerascnn.data import preprocess_images
from kerascnn.errors import KerasCNNError
from kerascnn.metadata import ModelMetadata
from kerascnn.predict import _preprocessing
from kerascnn.serving.app import (
    MODEL_SERVER,
    error_response,
    held_body,
    json_response,
)
from kerascnn.serving.errors import BadRequest, NotFound
from kerascnn.visualize import Explainer
from kerascnn.visualize.explain_methods import METHODS, SignatureModel
from kerascnn.visualize.explain_pictures import black_baseline

ROUTE = r"/v1/models/{tail:.+}:explain"
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
    """`(instances, method, class_index)` of a request body."""
    try:
        request = json.loads(body or b"{}")
        instances = request["instances"]
        if not isinstance(instances, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise BadRequest(
            'The body must be JSON with "instances": a list of model '
            'inputs (H x W x C numbers) or of {"b64": image file}.'
        ) from None
    method = request.get("method")
    if method is not None and method not in METHODS:
        raise BadRequest(
            f"method must be one of {', '.join(METHODS)}. Received: {method!r}"
        )
    if not 1 <= len(instances) <= MAX_INSTANCES:
        raise BadRequest(
            f'"instances" must hold 1 to {MAX_INSTANCES} images. '
            f"Received {len(instances)}."
        )
    return instances, method, request.get("class_index")


def _decode(instance, meta):
    """One `{"b64": image file}` as a model input `(H, W, C)`."""
    # The route is off by default: the image preprocessing, the explainer
    # and its pictures (matplotlib) load on its first request only.

    try:
        data = base64.b64decode(instance["b64"], validate=True)
        image = tf.io.decode_image(data, expand_animations=False)
    except (binascii.Error, TypeError, tf.errors.InvalidArgumentError):
        raise BadRequest(
            '"b64" must be a base64 PNG, JPEG, GIF or BMP file.'
        ) from None
    return np.asarray(preprocess_images(image[None], _preprocessing(meta)))[0]


def model_inputs(instances, meta):
    """A float32 batch `(N, H, W, C)` from numbers or `{"b64": ...}`."""
    if all(isinstance(i, dict) and "b64" in i for i in instances):
        if meta is None:
            raise BadRequest(
                "This model has no kerascnn metadata, so image files "
                "cannot be preprocessed; send model inputs."
            )
        return np.stack([_decode(i, meta) for i in instances])
    try:
        batch = np.asarray(instances, np.float32)
    except (ValueError, TypeError):
        batch = np.zeros(0)
    if batch.ndim != 4:
        raise BadRequest(
            '"instances" must be images of rank 3 (H x W x C numbers) or '
            f'{{"b64": ...}} files. Received shape {batch.shape}.'
        )
    return batch


def explain_loaded(loaded, instances, method=None, class_index=None):
    """The answer for one request on a `LoadedVersion`; `method` `None`:
    Grad-CAM where the SavedModel has `feature_map_gradients`, else
    SmoothGrad."""
    model = SignatureModel(loaded.module)
    if method is None:
        method = "gradcam" if model.has_cam else "smoothgrad"
    meta = ModelMetadata.from_dict(loaded.metadata) if loaded.metadata else None
    instances = model_inputs(instances, meta)
    options = {}
    if method == "integrated-gradients" and meta is not None:
        options["baseline"] = black_baseline(meta)
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
        async with held_body(request) as body:
            instances, method, class_index = _parse_body(body)
            answer = await asyncio.to_thread(
                explain_loaded, loaded, instances, method, class_index
            )
        return json_response(200, answer)

    return [web.post(ROUTE, explain)]
