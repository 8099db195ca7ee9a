"""The try-it page: plain HTML, CSS and JavaScript at `/` of the REST port.

    GET /               index.html
    GET /ui/app.js      the page's script
    GET /ui/style.css   its style sheet
    GET /ui/models      {"models": [names]}: what the page lists
    GET /ui/models/<name>/versions/<v>/kerascnn_metadata
                        kerascnn's metadata of a version (class names,
                        preprocessing), which TF Serving's metadata
                        answer has no field for

The page draws nothing from outside the server (a Content-Security-Policy
says so to the browser) and calls the same TF Serving REST routes a client
would: status, metadata and `:predict` with `predict_images` (`{"b64":
...}` PNG or any image file) or `predict_sentences`. The files ship as
package data; there is no build step. `routes()` gives the aiohttp routes
to add; `kerascnn serve --no-ui` leaves them out.
"""

import functools
import os

from aiohttp import web

from kerascnn.serving.app import MODEL_SERVER, error_response
from kerascnn.serving.errors import NotFound, ServingError

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
ASSETS = {
    "/": ("index.html", "text/html"),
    "/ui/app.js": ("app.js", "text/javascript"),
    "/ui/style.css": ("style.css", "text/css"),
}
MODELS_ROUTE = "/ui/models"
METADATA_ROUTE = "/ui/models/{name}/versions/{version}/kerascnn_metadata"
# Nothing but this server: no CDN, font or analytics request can slip in.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


@functools.lru_cache(maxsize=None)
def read_asset(path):
    """`(bytes, content type)` for a page route, or `None`."""
    if path not in ASSETS:
        return None
    filename, content_type = ASSETS[path]
    with open(os.path.join(STATIC_DIR, filename), "rb") as f:
        return f.read(), content_type


def model_names(model_server):
    """`{"models": [...]}`: the names of the models served now."""
    return {"models": sorted(model_server.models())}


def routes():
    """The page's `aiohttp.web.RouteDef`s, for `make_server(extra_routes=)`.

    Handlers find the `ModelServer` in the app (`app.MODEL_SERVER`).
    """

    async def page(request):
        body, content_type = read_asset(request.path)
        return web.Response(
            body=body,
            content_type=content_type,
            charset="utf-8",
            headers=HEADERS,
        )

    async def models(request):
        return web.json_response(model_names(request.app[MODEL_SERVER]))

    async def kerascnn_metadata(request):
        server = request.app[MODEL_SERVER]
        version = request.match_info["version"]
        try:
            if not version.isascii() or not version.isdigit():
                raise NotFound(f"No version {version!r}.")
            loaded = server.get(request.match_info["name"], int(version))
        except ServingError as e:
            return error_response(e)
        return web.json_response(loaded.metadata or {})

    return [web.get(path, page) for path in ASSETS] + [
        web.get(MODELS_ROUTE, models),
        web.get(METADATA_ROUTE, kerascnn_metadata),
    ]
