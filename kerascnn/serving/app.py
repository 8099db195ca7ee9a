"""A small model server that speaks TensorFlow Serving's REST dialect.

    >>> from kerascnn.serving import make_server
    >>> server = make_server("saved_models", "127.0.0.1", 8501)
    >>> server.serve_forever()          # Ctrl-C, or server.shutdown()

Every folder `<base>/<name>/` with integer version subfolders is a model;
hidden `.tmp-*` folders and names like `v0.1` are ignored, as TensorFlow
Serving ignores them. SavedModels load with `tf.saved_model.load` alone.
Routes (`<v>` an integer version, the highest when omitted):

    GET  /v1/models/<name>[/versions/<v>]            version status
    GET  /v1/models/<name>[/versions/<v>]/metadata   signature defs + ours
    POST /v1/models/<name>[/versions/<v>]:predict    instances or inputs

Errors are `{"error": "..."}` with 400 or 404; the server keeps serving.
`ModelServer` holds the models and answers requests without any HTTP, so
it can be tested or embedded directly; `make_server` puts it behind the
standard library's `ThreadingHTTPServer`.
"""

import dataclasses
import json
import logging
import os
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kerascnn.serving import handlers
from kerascnn.serving.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServingError,
)

logger = logging.getLogger("kerascnn.serving")

METADATA_ASSET = "kerascnn_metadata.json"
VERSION_POLICIES = ("latest", "all")
MAX_BODY_BYTES = 64 * 1024 * 1024

_ROUTE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<method>[A-Za-z_]+))?/?$"
)


# === Finding and loading versions ===


def scan_versions(model_dir):
    """Integer version folders holding a `saved_model.pb`, ascending."""
    try:
        names = os.listdir(model_dir)
    except OSError:
        return []
    return sorted(
        int(n)
        for n in names
        if n.isdigit()
        and os.path.isfile(os.path.join(model_dir, n, "saved_model.pb"))
    )


def scan_models(base_path):
    """`{name: (model folder, [versions])}` under `base_path`.

    `base_path` may also be one model's folder (integer versions directly
    inside), as TF Serving's `--model_base_path` is; the model is then
    named after the folder.
    """
    base_path = os.path.abspath(os.fspath(base_path))
    own = scan_versions(base_path)
    if own:
        return {os.path.basename(base_path): (base_path, own)}
    models = {}
    for name in sorted(os.listdir(base_path)):
        path = os.path.join(base_path, name)
        if name.startswith(".") or not os.path.isdir(path):
            continue
        versions = scan_versions(path)
        if versions:
            models[name] = (path, versions)
    return models


@dataclasses.dataclass
class LoadedVersion:
    """One loaded SavedModel version.

    Attributes:
        name: model name (the folder under the base path).
        version: the integer version.
        path: the version folder.
        signatures: `{key: handlers.Signature}`.
        metadata: our metadata JSON (`assets/kerascnn_metadata.json`), or
            `None` for SavedModels that kerascnn did not write.
        module: the loaded object; kept so its variables stay alive.
    """

    name: str
    version: int
    path: str
    signatures: dict
    metadata: dict = None
    module: object = None


def load_version(name, version, path):
    """Loads one version folder with `tf.saved_model.load`."""
    import tensorflow as tf

    try:
        module = tf.saved_model.load(path)
    except Exception as e:  # a corrupt folder must not stop the others
        raise ServingError(
            f"Cannot load SavedModel {path!r}: {str(e).splitlines()[0]}"
        ) from None
    metadata = None
    asset = os.path.join(path, "assets", METADATA_ASSET)
    if os.path.isfile(asset):
        try:
            with open(asset) as f:
                metadata = json.load(f)
        except (OSError, ValueError):
            logger.warning("Ignoring unreadable metadata %s", asset)
    return LoadedVersion(
        name, version, path, handlers.signatures_of(module), metadata, module
    )


# === The model server (no HTTP) ===


class ModelServer:
    """Loads the models under `base_path` and answers REST requests.

    Args:
        base_path: folder of `<name>/<integer version>/` SavedModels (or one
            model's folder of versions).
        version_policy: `"latest"` loads the highest version of each model
            (TF Serving's default); `"all"` loads every version. Requests
            without a version always go to the highest loaded one.
            Defaults to `"latest"`.

    Raises:
        ServingError: the base path is missing, holds no versions, or no
            version could be loaded.
    """

    def __init__(self, base_path="saved_models", version_policy="latest"):
        if version_policy not in VERSION_POLICIES:
            raise ServingError(
                f"version_policy must be one of {VERSION_POLICIES}. "
                f"Received: version_policy={version_policy!r}"
            )
        self.base_path = os.path.abspath(os.fspath(base_path))
        self.version_policy = version_policy
        self._models = {}  # name -> {version: LoadedVersion}
        self._lock = threading.Lock()
        if not os.path.isdir(self.base_path):
            raise ServingError(
                f"Model base path {os.fspath(base_path)!r} is not a folder."
            )
        self.reload()
        if not self._models:
            raise ServingError(
                f"No models to serve under {os.fspath(base_path)!r}: "
                "expected <name>/<integer version>/saved_model.pb (export "
                "one with `kerascnn export RUN_DIR`)."
            )

    # --- Loading ---

    def _wanted(self, versions):
        return versions if self.version_policy == "all" else versions[-1:]

    def reload(self):
        """Rescans the base path; loads new versions, drops removed ones.

        Returns:
            `(loaded, unloaded)`: lists of `(name, version)` pairs.
        """
        found = scan_models(self.base_path)
        loaded, unloaded = [], []
        current = self.models()
        new_models = {}
        for name, (model_dir, versions) in found.items():
            have = dict(current.get(name, {}))
            keep = {}
            for version in self._wanted(versions):
                if version in have:
                    keep[version] = have[version]
                    continue
                path = os.path.join(model_dir, str(version))
                try:
                    keep[version] = load_version(name, version, path)
                except ServingError as e:
                    logger.warning("%s", e)
                    continue
                loaded.append((name, version))
            if keep:
                new_models[name] = keep
        for name, versions in current.items():
            for version in versions:
                if version not in new_models.get(name, {}):
                    unloaded.append((name, version))
        with self._lock:
            self._models = new_models
        return loaded, unloaded

    def models(self):
        """`{name: {version: LoadedVersion}}`, a snapshot."""
        with self._lock:
            return {n: dict(v) for n, v in self._models.items()}

    def get(self, name, version=None):
        """The `LoadedVersion` for `name` (highest version by default)."""
        versions = self.models().get(name)
        if not versions:
            raise NotFound(
                f"Servable not found for request: model {name!r} is not "
                f"served here. Models: {', '.join(self.models()) or 'none'}."
            )
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise NotFound(
                f"Servable not found for request: model {name!r} has no "
                f"version {version}. Loaded versions: "
                f"{', '.join(str(v) for v in sorted(versions))}."
            )
        return versions[version]

    # --- Route handlers ---

    def status(self, name, version=None):
        """TF Serving's `GetModelStatus` JSON."""
        if version is None:
            self.get(name)
            entries = sorted(self.models()[name], reverse=True)
        else:
            entries = [self.get(name, version).version]
        return {
            "model_version_status": [
                {
                    "version": str(v),
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
                for v in entries
            ]
        }

    def metadata(self, name, version=None):
        """TF Serving's `GetModelMetadata` JSON plus our metadata."""
        loaded = self.get(name, version)
        defs = {
            k: handlers.signature_def(s) for k, s in loaded.signatures.items()
        }
        return {
            "model_spec": {
                "name": name,
                "signature_name": "",
                "version": str(loaded.version),
            },
            "metadata": {"signature_def": {"signature_def": defs}},
            "kerascnn_metadata": loaded.metadata,
        }

    def predict(self, name, body, version=None):
        """Runs a `:predict` request body; returns the JSON answer."""
        loaded = self.get(name, version)
        return handlers.predict(loaded.signatures, body)

    def handle(self, method, path, body=b""):
        """Routes one request; returns `(http status, JSON dict)`.

        Never raises for a client's mistake: errors come back as
        `{"error": ...}` with their status code.
        """
        try:
            return 200, self._route(method, path, body)
        except ServingError as e:
            return e.status, {"error": str(e)}
        except Exception as e:  # a bug must not take the server down
            logger.exception("Internal error on %s %s", method, path)
            return 500, {"error": f"Internal error: {type(e).__name__}: {e}"}

    def _route(self, method, path, body):
        path = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
        match = _ROUTE.match(path)
        if not match:
            raise NotFound(
                f"Unknown path {path!r}. Routes: GET /v1/models/<name>"
                "[/versions/<v>][/metadata], POST /v1/models/<name>"
                "[/versions/<v>]:predict."
            )
        name, version = match["name"], match["version"]
        if version is not None:
            if not version.isdigit():
                raise NotFound(
                    f"Version must be an integer; received {version!r}."
                )
            version = int(version)
        if match["method"]:
            if match["method"] != "predict":
                raise BadRequest(
                    f"Method :{match['method']} is not supported; this "
                    "server implements :predict."
                )
            if method != "POST":
                raise MethodNotAllowed(":predict takes POST requests.")
            return self.predict(name, body, version)
        if method != "GET":
            raise MethodNotAllowed(f"{path} takes GET requests.")
        if match["metadata"]:
            return self.metadata(name, version)
        return self.status(name, version)


# === HTTP ===


class RequestHandler(BaseHTTPRequestHandler):
    """Hands each request to the server's `ModelServer`; writes JSON."""

    protocol_version = "HTTP/1.1"
    server_version = "kerascnn-serving"
    timeout = 30  # idle keep-alive connections do not hold a thread forever

    def _respond(self, method):
        length = self.headers.get("Content-Length")
        body = b""
        try:
            size = int(length or 0)
        except ValueError:
            size = -1
        if size < 0:
            self.close_connection = True
            return self._send(400, {"error": "Invalid Content-Length."})
        if size > MAX_BODY_BYTES:
            self.close_connection = True
            error = PayloadTooLarge(
                f"Request body of {size} bytes is over the limit of "
                f"{MAX_BODY_BYTES} bytes."
            )
            return self._send(error.status, {"error": str(error)})
        if size:
            body = self.rfile.read(size)
        status, answer = self.server.model_server.handle(
            method, self.path, body
        )
        self._send(status, answer)

    def _send(self, status, answer):
        data = json.dumps(answer).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self._respond("GET")

    def do_POST(self):  # noqa: N802
        self._respond("POST")

    def do_PUT(self):  # noqa: N802
        self._respond("PUT")

    def do_DELETE(self):  # noqa: N802
        self._respond("DELETE")

    def log_message(self, format, *args):  # noqa: A002
        logger.info("%s - %s", self.address_string(), format % args)


class ServingHTTPServer(ThreadingHTTPServer):
    """`ThreadingHTTPServer` around a `ModelServer`; optional reloading.

    Attributes:
        model_server: the `ModelServer` answering requests.
        url: `http://host:port` actually bound (port 0 picks one).
    """

    daemon_threads = True

    def __init__(
        self, model_server, host="127.0.0.1", port=8501, poll_seconds=None
    ):
        super().__init__((host, port), RequestHandler)
        self.model_server = model_server
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._poller = None
        if poll_seconds:
            self._poller = threading.Thread(
                target=self._poll, name="kerascnn-serving-poll", daemon=True
            )
            self._poller.start()

    @property
    def url(self):
        host, port = self.server_address[:2]
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    def _poll(self):
        while not self._stop.wait(self.poll_seconds):
            try:
                loaded, unloaded = self.model_server.reload()
            except Exception:
                logger.exception("Rescanning the model base path failed")
                continue
            for name, version in loaded:
                logger.warning("Loaded %s version %d", name, version)
            for name, version in unloaded:
                logger.warning("Unloaded %s version %d", name, version)

    def server_close(self):
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        super().server_close()


def make_server(
    base_path="saved_models",
    host="127.0.0.1",
    port=8501,
    version_policy="latest",
    poll_seconds=None,
):
    """Loads the models and binds an HTTP server (not yet serving).

    Args:
        base_path: folder of `<name>/<integer version>/` SavedModels.
            Defaults to `"saved_models"`.
        host: address to bind. Defaults to `"127.0.0.1"`.
        port: port to bind; `0` picks a free one. Defaults to `8501`
            (TF Serving's REST port).
        version_policy: `"latest"` or `"all"`; see `ModelServer`.
        poll_seconds: rescan the base path this often for new or removed
            versions. Defaults to `None` (no rescans).

    Returns:
        A `ServingHTTPServer`: call `serve_forever()`, then `shutdown()`
        from another thread and `server_close()`.

    Raises:
        ServingError: nothing to serve, or the address cannot be bound.
    """
    model_server = ModelServer(base_path, version_policy=version_policy)
    try:
        return ServingHTTPServer(model_server, host, port, poll_seconds)
    except OSError as e:
        raise ServingError(f"Cannot listen on {host}:{port}: {e}") from None
