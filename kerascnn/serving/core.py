"""The HTTP-free model server: versions, queues, batching, TF Serving JSON.

    >>> server = ModelServer("saved_models")
    >>> result = server.predict_arrays("lenet", {"images": x})
    >>> result.version, result.outputs["class_ids"]
    >>> server.close()

`ModelServer` is what the REST app (and any other front end, e.g. gRPC)
calls. Everything is thread-safe; `predict_arrays` blocks, and
`predict_arrays_async` is its awaitable twin. Both go through the same
bounded queue, batcher and metrics as REST requests.

Versions follow TF Serving: the base path is polled (every second by
default); a new version is loaded and warmed (one call per signature)
before it is switched in, and the version it replaces is unloaded only
afterwards. A version that fails to load is retried a bounded number of
times, is reported in `status` with its error, and never takes the last
good version down.
"""

import asyncio
import dataclasses
import gc
import logging
import os
import threading
import time

import numpy as np

from kerascnn.export import layout
from kerascnn.serving import handlers
from kerascnn.serving.batching import Scheduler, Task
from kerascnn.serving.errors import (
    BadRequest,
    DeadlineExceeded,
    NotFound,
    ServingError,
    Unavailable,
)
from kerascnn.serving.metrics import Metrics

logger = logging.getLogger("kerascnn.serving")

DEFAULT_SIGNATURE = handlers.DEFAULT_SIGNATURE
VERSION_POLICIES = ("latest", "all", "specific")
DEFAULT_TIMEOUT = 30.0  # seconds, TF Serving's default request deadline

# TF Serving's ManagerState names, as GetModelStatus reports them.
START, LOADING, AVAILABLE, UNLOADING, END = (
    "START",
    "LOADING",
    "AVAILABLE",
    "UNLOADING",
    "END",
)


# === Configuration ===


@dataclasses.dataclass
class ModelConfig:
    """One served model (an entry of TF Serving's `model_config_list`).

    Attributes:
        name: the model name in URLs.
        base_path: the folder holding its integer versions.
        policy: `"latest"`, `"all"` or `"specific"`.
        num_versions: how many of the newest versions `"latest"` serves.
        versions: the versions `"specific"` serves.
    """

    name: str
    base_path: str
    policy: str = "latest"
    num_versions: int = 1
    versions: tuple = ()

    def __post_init__(self):
        if self.policy not in VERSION_POLICIES:
            raise ServingError(
                f"version_policy must be one of {VERSION_POLICIES}. "
                f"Received: version_policy={self.policy!r}"
            )
        self.base_path = os.path.abspath(os.fspath(self.base_path))


def discover_models(base_path, policy="latest"):
    """`ModelConfig`s for `base_path`: one model's folder of versions, or
    a folder of model folders (hidden ones skipped)."""
    if layout.list_versions(base_path, complete=False):
        return [ModelConfig(os.path.basename(base_path), base_path, policy)]
    configs = []
    for name in sorted(os.listdir(base_path)):
        path = os.path.join(base_path, name)
        if name.startswith(".") or not os.path.isdir(path):
            continue
        if layout.list_versions(path, complete=False):
            configs.append(ModelConfig(name, path, policy))
    return configs


def read_model_config_file(path):
    """`ModelConfig`s from TF Serving's `--model_config_file` text format.

    model_config_list {
      config { name: "lenet" base_path: "/models/lenet"
               model_platform: "tensorflow"
               model_version_policy { specific { versions: 1 } } }
    }
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    try:
        with open(path) as f:
            text = f.read()
        config = text_format.Parse(
            text, model_server_config_pb2.ModelServerConfig()
        )
    except (OSError, text_format.ParseError) as e:
        raise ServingError(f"Cannot read model config {path!r}: {e}") from None
    configs = []
    for entry in config.model_config_list.config:
        if not entry.name or not entry.base_path:
            raise ServingError(
                f"{path}: every config needs a name and a base_path."
            )
        policy = entry.model_version_policy
        which = policy.WhichOneof("policy_choice") or "latest"
        base = entry.base_path
        if not os.path.isabs(base):
            base = os.path.join(os.path.dirname(os.path.abspath(path)), base)
        configs.append(
            ModelConfig(
                entry.name,
                base,
                which,
                num_versions=max(1, policy.latest.num_versions or 1),
                versions=tuple(policy.specific.versions),
            )
        )
    if not configs:
        raise ServingError(f"{path}: model_config_list has no config.")
    return configs


# === Loaded versions ===


@dataclasses.dataclass
class LoadedVersion:
    """One loaded, warmed SavedModel version.

    Attributes:
        name: model name.
        version: the integer version.
        path: the version folder.
        signatures: `{key: layout.Signature}`.
        metadata: our metadata JSON, or `None`.
        module: the loaded object; kept so its variables stay alive.
    """

    name: str
    version: int
    path: str
    signatures: dict
    metadata: dict = None
    module: object = None


def _error_code(error):
    code = getattr(error, "error_code", None)
    if code is not None:
        import tensorflow as tf

        names = {
            v: k
            for k, v in vars(tf.errors).items()
            if k.isupper() and isinstance(v, int)
        }
        return names.get(code, "UNKNOWN")
    return "NOT_FOUND" if isinstance(error, FileNotFoundError) else "UNKNOWN"


def freeze_heap():
    """Moves every live object out of reach of Python's cyclic GC.

    A loaded SavedModel leaves hundreds of thousands of long-lived
    Python objects; without this, the full collections that the
    requests' own allocations trigger walk all of them, which cost
    more CPU per request than LeNet's call. Unfreezing and collecting
    first frees the cycles of versions unloaded since the last freeze.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def load_version(name, version, path):
    """Loads and warms one version; raises `ServingError` with a TF
    Serving error code in `.error_code`."""
    import tensorflow as tf

    try:
        module = tf.saved_model.load(path)
        signatures = layout.signatures_of(module)
    except Exception as e:  # a corrupt folder must not stop the others
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        error = ServingError(f"Cannot load SavedModel {path!r}: {first}")
        error.error_code = _error_code(e)
        raise error from None
    loaded = LoadedVersion(
        name,
        version,
        path,
        signatures,
        layout.read_metadata(path),
        module,
    )
    warm_up(loaded)
    return loaded


def _warmup_feed(spec):
    shape = [1 if d is None else int(d) for d in (spec.shape or [1])]
    if spec.dtype.name == "string":
        return np.full(shape, b"warmup", dtype=object)
    return np.zeros(shape, dtype=spec.dtype.as_numpy_dtype)


def replay_warmup_records(loaded):
    """Replays TF Serving's warm-up file of a version; returns its count.

    `kerascnn export` writes real requests to
    `assets.extra/tf_serving_warmup_requests`; as in TF Serving, a record
    that fails fails the load.
    """
    from kerascnn.errors import ExportError
    from kerascnn.export import warmup

    def run(signature_name, arrays):
        if signature_name not in loaded.signatures:
            raise BadRequest(f"no signature {signature_name!r}")
        signature = loaded.signatures[signature_name]
        handlers.run_signature(
            signature, handlers.check_arrays(signature, arrays)
        )

    started = time.perf_counter()
    try:
        count = warmup.replay_warmup_requests(loaded.path, run)
    except ExportError as e:
        error = ServingError(f"Cannot warm up {loaded.path!r}: {e}")
        error.error_code = "INVALID_ARGUMENT"
        raise error from None
    if count:
        logger.warning(
            "Replayed %d warm-up records of %s version %d (%s) in %.2f s",
            count,
            loaded.name,
            loaded.version,
            warmup.WARMUP_FILE,
            time.perf_counter() - started,
        )
    return count


def warm_up(loaded):
    """Real calls on every signature, so the first request is not slow.

    The version's warm-up records when it has them, else one call per
    signature on zeros (numbers) or `b"warmup"` (strings); a signature
    that rejects those (an image decoder, say) was still traced, which
    is what warming is for.
    """
    if replay_warmup_records(loaded):
        return
    for signature in loaded.signatures.values():
        try:
            feeds = {n: _warmup_feed(s) for n, s in signature.inputs.items()}
            handlers.run_signature(signature, feeds)
        except BadRequest:
            pass


@dataclasses.dataclass
class VersionState:
    """What `status` reports for one version, and its retry bookkeeping."""

    version: int
    state: str = START
    error_code: str = "OK"
    error_message: str = ""
    attempts: int = 0
    next_try: float = 0.0
    stamp: tuple = ()

    def as_json(self):
        return {
            "version": str(self.version),
            "state": self.state,
            "status": {
                "error_code": self.error_code,
                "error_message": self.error_message,
            },
        }


def _stamp(path):
    try:
        st = os.stat(os.path.join(path, layout.SAVED_MODEL_FILE))
    except OSError:
        return ()
    return (st.st_mtime_ns, st.st_size)


@dataclasses.dataclass
class PredictResult:
    """The answer of `predict_arrays`.

    Attributes:
        model: model name.
        version: the version that answered (int).
        signature_name: the signature that ran.
        outputs: `{output name: np.ndarray}`, batch dimension first.
    """

    model: str
    version: int
    signature_name: str
    outputs: dict


# === The server ===


class ModelServer:
    """Serves the models of a base path or a model config list.

    Args:
        base_path: folder of `<name>/<integer version>/` SavedModels, or
            one model's folder of versions. Ignored with `model_configs`.
        version_policy: `"latest"` (TF Serving's default) or `"all"`.
        model_name: serve `base_path` as this one model (TF Serving's
            `--model_name`); by default models are discovered.
        model_configs: a list of `ModelConfig` (from
            `read_model_config_file`) instead of `base_path`.
        batching: `BatchingParameters`, or `None` for no batching.
        num_threads: model-call workers when batching is off.
        max_queued_requests: per-model bound; more requests get 503.
        request_timeout: default deadline in seconds (504 after it).
        poll_seconds: rescan for versions this often; 0 or `None` off.
        max_num_load_retries: retries of a version that fails to load.
        load_retry_interval: seconds between those retries.

    Raises:
        ServingError: no model folder, or no version could be loaded.
    """

    def __init__(
        self,
        base_path="saved_models",
        version_policy="latest",
        *,
        model_name=None,
        model_configs=None,
        batching=None,
        num_threads=None,
        max_queued_requests=1024,
        request_timeout=DEFAULT_TIMEOUT,
        poll_seconds=1.0,
        max_num_load_retries=5,
        load_retry_interval=60.0,
    ):
        if version_policy not in ("latest", "all"):
            raise ServingError(
                "version_policy must be one of ('latest', 'all'). "
                f"Received: version_policy={version_policy!r}"
            )
        self.base_path = None
        self.version_policy = version_policy
        if model_configs is None:
            self.base_path = os.path.abspath(os.fspath(base_path))
            if not os.path.isdir(self.base_path):
                raise ServingError(
                    f"Model base path {os.fspath(base_path)!r} is not a folder."
                )
            if model_name:
                model_configs = [
                    ModelConfig(model_name, self.base_path, version_policy)
                ]
        self._discover = model_configs is None
        self._configs = {c.name: c for c in (model_configs or [])}
        self.request_timeout = float(request_timeout or DEFAULT_TIMEOUT)
        self.max_num_load_retries = int(max_num_load_retries)
        self.load_retry_interval = float(load_retry_interval)
        self.metrics = Metrics()
        self._lock = threading.Lock()  # guards _serving and _states
        self._sync_lock = threading.Lock()  # one rescan at a time
        self._serving = {}  # name -> {version: LoadedVersion}
        self._states = {}  # name -> {version: VersionState}
        self.scheduler = Scheduler(
            batching,
            num_threads=num_threads,
            max_queued_requests=max_queued_requests,
            metrics=self.metrics,
        )
        try:
            self.reload()
            self._check_started(base_path)
        except BaseException:
            self.scheduler.close(timeout=1)
            raise
        self._stop = threading.Event()
        self._poller = None
        if poll_seconds:
            self._poller = threading.Thread(
                target=self._poll,
                args=(float(poll_seconds),),
                name="kerascnn-serving-poll",
                daemon=True,
            )
            self._poller.start()

    @classmethod
    def from_config_file(cls, path, **kwargs):
        """A server for TF Serving's `--model_config_file`."""
        return cls(model_configs=read_model_config_file(path), **kwargs)

    def _check_started(self, base_path):
        if any(self._serving.values()):
            return
        errors = [
            f"{name} version {s.version}: {s.error_message}"
            for name, states in self._states.items()
            for s in states.values()
            if s.error_message
        ]
        if errors:
            raise ServingError("No version could be loaded: " + errors[0])
        raise ServingError(
            f"No models to serve under {os.fspath(base_path)!r}: expected "
            "<name>/<integer version>/saved_model.pb (export one with "
            "`kerascnn export RUN_DIR`)."
        )

    # --- Versions ---

    def model_configs(self):
        """The served models' `ModelConfig`s (discovered or configured).

        Without a model name or config list, model folders that appear
        under the base path later are picked up too.
        """
        if self._discover:
            for config in discover_models(self.base_path, self.version_policy):
                self._configs.setdefault(config.name, config)
        return list(self._configs.values())

    def reload(self):
        """Rescans every model once; loads, retries and unloads versions.

        Returns:
            `(loaded, unloaded)`: lists of `(name, version)` pairs.
        """
        loaded, unloaded = [], []
        with self._sync_lock:
            for config in self.model_configs():
                new, gone = self._sync_model(config)
                loaded += [(config.name, v) for v in new]
                unloaded += [(config.name, v) for v in gone]
        if loaded or unloaded:
            freeze_heap()
        self._report_versions()
        return loaded, unloaded

    def _sync_model(self, config):
        found = layout.list_versions(config.base_path)
        states = self._states.setdefault(config.name, {})
        serving = dict(self._serving.get(config.name, {}))
        for version in list(states):
            if version not in found and version not in serving:
                del states[version]
        wanted = self._wanted(config, found)
        new, keep = [], set()
        for version in wanted:
            if config.policy == "latest" and len(keep) >= config.num_versions:
                break
            if version in serving:
                keep.add(version)
                continue
            path = layout.version_path(config.base_path, version)
            if self._try_load(config.name, version, path, states, serving):
                new.append(version)
                keep.add(version)
        gone = []
        for version in sorted(serving):
            if version not in keep:
                gone.append(version)
                del serving[version]
                states.pop(version, None)
                logger.warning("Unloaded %s version %d", config.name, version)
        with self._lock:
            self._serving[config.name] = serving
        return new, gone

    def _wanted(self, config, found):
        if config.policy == "specific":
            return sorted(set(found) & set(config.versions), reverse=True)
        return sorted(found, reverse=True)

    def _try_load(self, name, version, path, states, serving):
        state = states.get(version)
        stamp = _stamp(path)
        if state is None or (state.error_message and state.stamp != stamp):
            state = states[version] = VersionState(version, stamp=stamp)
        if state.state == END or time.monotonic() < state.next_try:
            return False
        state.state = LOADING
        try:
            loaded = load_version(name, version, path)
        except ServingError as e:
            self._failed(name, state, e)
            return False
        state.state, state.error_code, state.error_message = (
            AVAILABLE,
            "OK",
            "",
        )
        serving[version] = loaded
        logger.warning("Loaded %s version %d", name, version)
        return True

    def _failed(self, name, state, error):
        state.attempts += 1
        state.error_code = getattr(error, "error_code", "UNKNOWN")
        state.error_message = str(error)
        self.metrics.load_failures.labels(name, str(state.version)).inc()
        total = self.max_num_load_retries + 1
        if state.attempts >= total:
            state.state = END
            logger.warning(
                "Giving up on %s version %d after %d attempts: %s",
                name,
                state.version,
                state.attempts,
                error,
            )
            return
        state.state = LOADING
        state.next_try = time.monotonic() + self.load_retry_interval
        logger.warning(
            "Loading %s version %d failed (attempt %d of %d, retry in "
            "%g s): %s",
            name,
            state.version,
            state.attempts,
            total,
            self.load_retry_interval,
            error,
        )

    def _report_versions(self):
        gauge = self.metrics.versions
        for name, states in self._states.items():
            counts = dict.fromkeys((START, LOADING, AVAILABLE, END), 0)
            for s in states.values():
                counts[s.state] = counts.get(s.state, 0) + 1
            for state, count in counts.items():
                gauge.labels(name, state).set(count)

    def _poll(self, seconds):
        while not self._stop.wait(seconds):
            try:
                self.reload()
            except Exception:
                logger.exception("Rescanning the model base path failed")

    def close(self, timeout=30.0):
        """Stops polling; finishes queued work; stops the workers."""
        if self._poller is not None:
            self._stop.set()
            self._poller.join(timeout=timeout)
        self.scheduler.close(timeout=timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- Looking up ---

    def models(self):
        """`{name: {version: LoadedVersion}}`: what is serving now."""
        with self._lock:
            return {n: dict(v) for n, v in self._serving.items()}

    def get(self, name, version=None):
        """The `LoadedVersion` for `name` (highest version by default)."""
        with self._lock:
            known = name in self._states
            versions = dict(self._serving.get(name, {}))
        if not known:
            raise NotFound(
                f"Servable not found for request: model {name!r} is not "
                f"served here. Models: {', '.join(self.models()) or 'none'}."
            )
        if not versions:
            raise Unavailable(f"Model {name!r} has no version available yet.")
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise NotFound(
                f"Servable not found for request: model {name!r} has no "
                f"version {version}. Available versions: "
                f"{', '.join(str(v) for v in sorted(versions))}."
            )
        return versions[version]

    def signature(self, name, version=None, signature_name=None):
        """The `layout.Signature` (input/output names, dtypes, shapes)."""
        return self._signature(self.get(name, version), signature_name)

    def _signature(self, loaded, signature_name):
        key = signature_name or DEFAULT_SIGNATURE
        if key not in loaded.signatures:
            raise BadRequest(
                f"Serving signature name: {key!r} not found in signature "
                f"def. Available signatures: "
                f"{', '.join(sorted(loaded.signatures))}."
            )
        return loaded.signatures[key]

    # --- TF Serving's JSON answers ---

    def status(self, name, version=None):
        """TF Serving's `GetModelStatus` JSON."""
        with self._lock:
            states = dict(self._states.get(name, {}))
        if name not in self._states:
            self.get(name)  # raises NotFound
        if version is not None:
            if version not in states:
                raise NotFound(
                    f"Could not find version {version} of model {name!r}."
                )
            states = {version: states[version]}
        entries = [states[v].as_json() for v in sorted(states, reverse=True)]
        return {"model_version_status": entries}

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

    # --- Predicting ---

    def _task(self, loaded, signature, feeds, timeout):
        seconds = self.request_timeout if timeout is None else timeout
        deadline = time.monotonic() + float(seconds)
        task = Task(loaded.name, loaded, signature, feeds, deadline)
        return task, float(seconds)

    def _observe(self, name, loaded, signature_name, code, started):
        self.metrics.observe_request(
            name,
            loaded.version if loaded is not None else "",
            signature_name,
            code,
            time.perf_counter() - started,
        )

    def predict_arrays(
        self, name, inputs, version=None, signature_name=None, timeout=None
    ):
        """Runs a signature on `{input name: array}`; blocks.

        Returns:
            A `PredictResult`.

        Raises:
            NotFound, BadRequest, Unavailable, DeadlineExceeded.
        """
        started, loaded, code = time.perf_counter(), None, 500
        key = signature_name or DEFAULT_SIGNATURE
        try:
            loaded = self.get(name, version)
            signature = self._signature(loaded, signature_name)
            feeds = handlers.check_arrays(signature, inputs)
            task, seconds = self._task(loaded, signature, feeds, timeout)
            future = self.scheduler.submit(task)
            try:
                outputs = future.result(timeout=seconds)
            except TimeoutError:
                future.cancel()
                raise DeadlineExceeded(
                    f"Deadline of {seconds:g} s exceeded."
                ) from None
            code = 200
            return PredictResult(name, loaded.version, key, outputs)
        except ServingError as e:
            code = e.status
            raise
        finally:
            self._observe(name, loaded, key, code, started)

    async def predict_arrays_async(
        self, name, inputs, version=None, signature_name=None, timeout=None
    ):
        """`predict_arrays` for asyncio: awaits instead of blocking."""
        started, loaded, code = time.perf_counter(), None, 500
        key = signature_name or DEFAULT_SIGNATURE
        try:
            loaded = self.get(name, version)
            signature = self._signature(loaded, signature_name)
            feeds = handlers.check_arrays(signature, inputs)
            outputs = await self._await(loaded, signature, feeds, timeout)
            code = 200
            return PredictResult(name, loaded.version, key, outputs)
        except ServingError as e:
            code = e.status
            raise
        finally:
            self._observe(name, loaded, key, code, started)

    async def _await(self, loaded, signature, feeds, timeout):
        task, seconds = self._task(loaded, signature, feeds, timeout)
        future = asyncio.wrap_future(self.scheduler.submit(task))
        try:
            async with asyncio.timeout(seconds):
                return await future
        except TimeoutError:
            task.future.cancel()
            raise DeadlineExceeded(
                f"Deadline of {seconds:g} s exceeded."
            ) from None

    async def predict_json_async(self, name, body, version=None, timeout=None):
        """A REST `:predict` body in, TF Serving's JSON answer out."""
        started, loaded, code, key = time.perf_counter(), None, 500, ""
        try:
            request = handlers.parse_json(body)
            loaded = self.get(name, version)
            signature = handlers.find_signature(loaded.signatures, request)
            key = signature.name
            signature, feeds, rows = handlers.parse_predict(
                loaded.signatures, request
            )
            outputs = await self._await(loaded, signature, feeds, timeout)
            answer = handlers.format_predict(outputs, rows)
            code = 200
            return answer
        except ServingError as e:
            code = e.status
            raise
        finally:
            self._observe(name, loaded, key, code, started)

    def handle(self, method, path, body=b""):
        """Routes one REST request without HTTP; `(status, JSON dict)`.

        Never raises for a client's mistake: errors come back as
        `{"error": ...}` with their status code.
        """
        try:
            route = handlers.parse_route(method, path)
            if route.kind == "predict":
                answer = self.predict(route.name, body, route.version)
            elif route.kind == "metadata":
                answer = self.metadata(route.name, route.version)
            else:
                answer = self.status(route.name, route.version)
            return 200, answer
        except ServingError as e:
            return e.status, {"error": str(e)}

    def predict(self, name, body, version=None, timeout=None):
        """Blocking twin of `predict_json_async` (tests, embedding)."""
        request = handlers.parse_json(body)
        inputs_loaded = self.get(name, version)
        signature, feeds, rows = handlers.parse_predict(
            inputs_loaded.signatures, request
        )
        result = self.predict_arrays(
            name, feeds, inputs_loaded.version, signature.name, timeout
        )
        return handlers.format_predict(result.outputs, rows)
