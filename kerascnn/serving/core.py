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
default); a new version is loaded and warmed (its warm-up records; no
signature runs without them) before it is switched in, and the version
it replaces is unloaded only afterwards. A version that fails to load is
retried a bounded number of times, is reported in `status` with its
error, and never takes the last good version down.

Every request is checked against the server's `RequestBudget` (rows,
decoded pixels, tensor bytes) before its model call, and its body
against `InflightBytes` (see `budget`).
"""

import asyncio
import dataclasses
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from kerascnn.serving import arrays, handlers, image_feeds, inference
from kerascnn.serving.batching import LoopFuture, Scheduler, Task
from kerascnn.serving.budget import InflightBytes, RequestBudget
from kerascnn.serving.errors import (
    BadRequest,
    DeadlineExceeded,
    NotFound,
    ServingError,
    Unavailable,
)
from kerascnn.serving.metrics import Metrics
from kerascnn.serving.model_config import (
    ModelConfig,
    read_model_config_file,
)
from kerascnn.serving.options import DEFAULTS
from kerascnn.serving.versions import VersionManager

logger = logging.getLogger("kerascnn.serving")

DEFAULT_SIGNATURE = handlers.DEFAULT_SIGNATURE
DEFAULT_TIMEOUT = DEFAULTS.request_timeout_seconds
# Bodies larger than this are parsed on a worker thread, off the event
# loop (a 10 MB JSON body takes seconds to parse); smaller ones take
# less time than the hand-over.
PARSE_OFF_LOOP_BYTES = 256 * 1024
PARSE_THREADS = 2
UNKNOWN_MODEL = "unknown"


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


@dataclasses.dataclass
class InferenceResult:
    """The answer of `run_examples` (Classify or Regress).

    Attributes:
        model: model name.
        version: the version that answered (int).
        signature_name: the signature that ran.
        result: `[[(label, score), ...]]` per example (classify) or one
            float per example (regress).
    """

    model: str
    version: int
    signature_name: str
    result: list


class _Observed:
    """Counts one request in the metrics however it ends: 200, the
    `ServingError`'s status, or 500 for anything else.

    Attributes:
        name: the model name asked for.
        key: the signature label (only a name the model has, so clients
            cannot grow the metrics with made-up labels).
        loaded: the `LoadedVersion` that answered, once known.
        label: `fn(name)`: the model label of a request that found no
            version (the name if the server knows it, else "unknown").
    """

    __slots__ = (
        "metrics",
        "name",
        "key",
        "api",
        "protocol",
        "loaded",
        "label",
        "_t0",
    )

    def __init__(self, metrics, name, api, protocol, label):
        self.metrics, self.name, self.key = metrics, name, ""
        self.api, self.protocol, self.loaded = api, protocol, None
        self.label = label

    def name_signature(self, signature_name):
        if signature_name in self.loaded.signatures:
            self.key = signature_name

    def __enter__(self):
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, kind, error, traceback):
        if kind is None:
            code = 200
        elif isinstance(error, ServingError):
            code = error.status
        else:
            code = 500
        loaded = self.loaded
        self.metrics.observe_request(
            loaded.name if loaded is not None else self.label(self.name),
            loaded.version if loaded is not None else "",
            self.key,
            code,
            time.perf_counter() - self._t0,
            self.api,
            self.protocol,
        )
        return False


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
        allow_version_labels_for_unavailable_models: let a label of the
            model config name a version that is not loaded yet (TF
            Serving's flag of that name); otherwise the start fails.
        servable_versions_always_present: keep a model's last version
            serving when its version folders vanish (TF Serving's flag).
        max_request_rows, max_decoded_pixels, max_tensor_bytes: the
            `RequestBudget` every request is checked against before its
            model call (400 past it).
        max_inflight_body_bytes: request bodies held at once by all
            front ends (`bodies`, an `InflightBytes`; 503 past it).

    Raises:
        ServingError: no model folder, or no version could be loaded.
    """

    def __init__(
        self,
        base_path=DEFAULTS.model_base_path,
        version_policy="latest",
        *,
        model_name=None,
        model_configs=None,
        batching=None,
        num_threads=None,
        max_queued_requests=DEFAULTS.max_queued_requests,
        request_timeout=DEFAULT_TIMEOUT,
        poll_seconds=DEFAULTS.file_system_poll_wait_seconds,
        max_num_load_retries=DEFAULTS.max_num_load_retries,
        load_retry_interval=DEFAULTS.load_retry_interval_micros / 1e6,
        allow_version_labels_for_unavailable_models=False,
        servable_versions_always_present=False,
        max_request_rows=DEFAULTS.max_request_rows,
        max_decoded_pixels=DEFAULTS.max_decoded_pixels,
        max_tensor_bytes=DEFAULTS.max_tensor_bytes,
        max_inflight_body_bytes=DEFAULTS.max_inflight_body_bytes,
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
        self.request_timeout = float(request_timeout or DEFAULT_TIMEOUT)
        self.budget = RequestBudget(
            max_request_rows=max_request_rows,
            max_decoded_pixels=max_decoded_pixels,
            max_tensor_bytes=max_tensor_bytes,
        )
        self.bodies = InflightBytes(max_inflight_body_bytes)
        self.metrics = Metrics()
        self.versions = VersionManager(
            model_configs,
            self.base_path,
            version_policy,
            self.metrics,
            max_num_load_retries,
            load_retry_interval,
            always_present=servable_versions_always_present,
        )
        self.scheduler = Scheduler(
            batching,
            num_threads=num_threads,
            max_queued_requests=max_queued_requests,
            metrics=self.metrics,
        )
        try:
            self.versions.reload()
            self.versions.check_started(base_path)
            self.versions.check_labels(
                allow_version_labels_for_unavailable_models
            )
        except BaseException:
            self.scheduler.close(timeout=1)
            raise
        self._parser = ThreadPoolExecutor(
            PARSE_THREADS, thread_name_prefix="kerascnn-parse"
        )
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
        self._parser.shutdown(wait=False)
        self.scheduler.close(timeout=timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- Looking up ---

    def model_configs(self):
        """The served models' `ModelConfig`s (discovered or configured)."""
        return self.versions.model_configs()

    def reload(self):
        """Rescans the models once; returns `(loaded, unloaded)` pairs."""
        return self.versions.reload()

    def models(self):
        """`{name: {version: LoadedVersion}}`: what is serving now."""
        return self.versions.serving()

    def get(self, name, version=None, label=None):
        """The `LoadedVersion` for `name` (highest version by default).

        `label` (a version label of the model config) resolves to its
        version first; giving both is TF Serving's 400.
        """
        if label is not None and version is not None:
            raise BadRequest(
                f"Both model version ({version}) and model version "
                f"label ({label}) cannot be supplied."
            )
        known, versions, _ = self.versions.lookup(name)
        if not known:
            raise NotFound(
                f"Servable not found for request: model {name!r} is not "
                f"served here. Models: {', '.join(self.models()) or 'none'}."
            )
        if label is not None:
            version = self.versions.resolve_label(name, label)
        if not versions:
            raise Unavailable(f"Model {name!r} has no version available yet.")
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise NotFound(
                f"Servable not found for request: Specific({name}, "
                f"{version}): model {name!r} has no version {version} "
                f"available. Available versions: "
                f"{', '.join(str(v) for v in sorted(versions))}."
            )
        return versions[version]

    def ready(self):
        """`(ready, {name: [available versions]})`: ready when every
        configured model has at least one AVAILABLE version."""
        models = {c.name: [] for c in self.model_configs()}
        for name, versions in self.models().items():
            models.setdefault(name, []).extend(sorted(versions))
        return bool(models) and all(models.values()), models

    def signature(self, name, version=None, signature_name=None):
        """The `layout.Signature` (input/output names, dtypes, shapes)."""
        return self._signature(self.get(name, version), signature_name)

    def _signature(self, loaded, signature_name):
        key = signature_name or DEFAULT_SIGNATURE
        if key not in loaded.signatures:
            raise handlers.unknown_signature(key, loaded.signatures)
        return loaded.signatures[key]

    # --- TF Serving's JSON answers ---

    def status(self, name, version=None, label=None):
        """TF Serving's `GetModelStatus` JSON."""
        if label is not None:
            version = self.get(name, version, label).version
        known, _, states = self.versions.lookup(name)
        if not known:
            self.get(name)  # raises NotFound
        if version is not None:
            if version not in states:
                raise NotFound(
                    f"Could not find version {version} of model {name!r}."
                )
            states = {version: states[version]}
        entries = [states[v].as_json() for v in sorted(states, reverse=True)]
        return {"model_version_status": entries}

    def metadata(self, name, version=None, label=None):
        """TF Serving's `GetModelMetadata` JSON, field for field."""
        loaded = self.get(name, version, label)
        return {
            "model_spec": {
                "name": name,
                "signature_name": "",
                "version": str(loaded.version),
            },
            "metadata": {
                "signature_def": handlers.signature_def_map_json(
                    loaded.signature_defs
                )
            },
        }

    # --- Predicting ---

    def _observed(self, name, api="predict", protocol="python"):
        """A `with` block that counts one request in the metrics."""
        return _Observed(self.metrics, name, api, protocol, self._label)

    def _label(self, name):
        """A model's metrics label: its name only if it is served here."""
        return name if self.versions.lookup(name)[0] else UNKNOWN_MODEL

    async def parse_off_loop(self, body, fn, *args):
        """`fn(*args)`, on a parser thread when `body` is large."""
        if len(body) <= PARSE_OFF_LOOP_BYTES:
            return fn(*args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._parser, fn, *args)

    def _time_left(self, timeout, started):
        """Seconds left of a request's deadline, counted from its arrival
        (a body parsed off the loop may have waited for a parser)."""
        seconds = self.request_timeout if timeout is None else timeout
        left = float(seconds) - (time.monotonic() - started)
        if left <= 0:
            raise DeadlineExceeded(
                f"Deadline of {seconds:g} s exceeded before the model call."
            )
        return left

    def _task(self, loaded, signature, feeds, timeout):
        self.budget.check_feeds(signature, feeds)
        feeds = image_feeds.normalized_feeds(loaded, signature, feeds)
        seconds = self.request_timeout if timeout is None else timeout
        deadline = time.monotonic() + float(seconds)
        task = Task(loaded.name, loaded, signature, feeds, deadline)
        return task, float(seconds)

    def _wait(self, loaded, signature, feeds, timeout):
        """Queues one model call and blocks for its outputs."""
        task, seconds = self._task(loaded, signature, feeds, timeout)
        future = self.scheduler.submit(task)
        try:
            return future.result(timeout=seconds)
        except TimeoutError:
            future.cancel()
            raise DeadlineExceeded(
                f"Deadline of {seconds:g} s exceeded."
            ) from None

    async def _await(self, loaded, signature, feeds, timeout):
        task, seconds = self._task(loaded, signature, feeds, timeout)
        task.future = LoopFuture(asyncio.get_running_loop())
        self.scheduler.submit(task)
        try:
            async with asyncio.timeout(seconds):
                # A timeout cancels the waiter: the scheduler skips it.
                return await task.future.waiter
        except TimeoutError:
            raise DeadlineExceeded(
                f"Deadline of {seconds:g} s exceeded."
            ) from None

    def _arrays_call(self, seen, inputs, version, signature_name, label):
        """`(loaded, signature, feeds)` for `{input name: array}`."""
        seen.loaded = self.get(seen.name, version, label)
        seen.name_signature(signature_name or DEFAULT_SIGNATURE)
        signature = self._signature(seen.loaded, signature_name)
        feeds = arrays.check_arrays(signature, inputs)
        seen.loaded.check_shapes(signature, feeds)
        return seen.loaded, signature, feeds

    def predict_arrays(
        self,
        name,
        inputs,
        version=None,
        signature_name=None,
        timeout=None,
        *,
        label=None,
        protocol="python",
    ):
        """Runs a signature on `{input name: array}`; blocks.

        Returns:
            A `PredictResult`.

        Raises:
            NotFound, BadRequest, Unavailable, DeadlineExceeded.
        """
        key = signature_name or DEFAULT_SIGNATURE
        with self._observed(name, protocol=protocol) as seen:
            call = self._arrays_call(
                seen, inputs, version, signature_name, label
            )
            outputs = self._wait(*call, timeout)
            return PredictResult(name, seen.loaded.version, key, outputs)

    async def predict_arrays_async(
        self,
        name,
        inputs,
        version=None,
        signature_name=None,
        timeout=None,
        *,
        protocol="python",
    ):
        """`predict_arrays` for asyncio: awaits instead of blocking."""
        key = signature_name or DEFAULT_SIGNATURE
        with self._observed(name, protocol=protocol) as seen:
            call = self._arrays_call(
                seen, inputs, version, signature_name, None
            )
            outputs = await self._await(*call, timeout)
            return PredictResult(name, seen.loaded.version, key, outputs)

    async def predict_json_async(
        self,
        name,
        body,
        version=None,
        timeout=None,
        label=None,
        numpy_numbers=False,
    ):
        """A REST `:predict` body in, TF Serving's JSON answer out (with
        `numpy_numbers`, for `handlers.dumps` only: see `format_predict`).
        """
        started = time.monotonic()
        with self._observed(name, protocol="rest") as seen:

            def lookup(signature_name):
                seen.loaded = self.get(name, version, label)
                seen.name_signature(signature_name)
                return seen.loaded.signatures

            signature, feeds, rows = await self.parse_off_loop(
                body, handlers.parse_predict_body, body, lookup, self.budget
            )
            seen.loaded.check_shapes(signature, feeds)
            left = self._time_left(timeout, started)
            outputs = await self._await(seen.loaded, signature, feeds, left)
            return handlers.format_predict(outputs, rows, numpy_numbers)

    # --- Classify and Regress (tf.Examples) ---

    def _examples_call(self, seen, method, serialized, version, label, key):
        seen.loaded = self.get(seen.name, version, label)
        seen.name_signature(key)
        signature = inference.check_signature(seen.loaded, key, method)
        feeds = inference.examples_feed(serialized)
        seen.loaded.check_shapes(signature, feeds)
        return seen.loaded, signature, feeds

    def _examples_result(self, method, loaded, key, outputs, count):
        if method == "classify":
            result = inference.classifications(outputs, count)
        else:
            result = inference.regressions(outputs, count)
        return InferenceResult(loaded.name, loaded.version, key, result)

    def run_examples(
        self,
        method,
        name,
        serialized,
        version=None,
        signature_name=None,
        timeout=None,
        label=None,
        protocol="python",
    ):
        """Classify or Regress serialized `tf.Example`s; blocks.

        Args:
            method: "classify" or "regress".
            serialized: a list of serialized examples (bytes).

        Returns:
            An `InferenceResult`: `[[(label, score), ...]]` per example for
            classify, one float per example for regress.
        """
        key = signature_name or DEFAULT_SIGNATURE
        with self._observed(name, api=method, protocol=protocol) as seen:
            call = self._examples_call(
                seen, method, serialized, version, label, key
            )
            outputs = self._wait(*call, timeout)
            return self._examples_result(
                method, seen.loaded, key, outputs, len(serialized)
            )

    async def examples_json_async(
        self, method, name, body, version=None, timeout=None, label=None
    ):
        """A REST `:classify` / `:regress` body in, TF Serving's JSON out."""
        started = time.monotonic()
        with self._observed(name, api=method, protocol="rest") as seen:
            request = await self.parse_off_loop(body, handlers.parse_json, body)
            key = handlers.signature_name_of(request)
            serialized = inference.examples_from_json(request, method)
            call = self._examples_call(
                seen, method, serialized, version, label, key
            )
            outputs = await self._await(
                *call, self._time_left(timeout, started)
            )
            result = self._examples_result(
                method, seen.loaded, key, outputs, len(serialized)
            )
            if method == "classify":
                return inference.classify_json(result.result)
            return inference.regress_json(result.result)

    # --- Without HTTP ---

    def handle(self, method, path, body=b""):
        """Routes one REST request without HTTP; `(status, JSON dict)`.

        Never raises for a client's mistake: errors come back as
        `{"error": ...}` with their status code.
        """
        try:
            route = handlers.parse_route(method, path)
            if route.kind == "predict":
                answer = self.predict(
                    route.name, body, route.version, label=route.label
                )
            elif route.kind in ("classify", "regress"):
                answer = asyncio.run(
                    self.examples_json_async(
                        route.kind,
                        route.name,
                        body,
                        route.version,
                        label=route.label,
                    )
                )
            elif route.kind == "metadata":
                answer = self.metadata(route.name, route.version, route.label)
            else:
                answer = self.status(route.name, route.version, route.label)
            return 200, answer
        except ServingError as e:
            return e.status, {"error": str(e)}

    def predict(self, name, body, version=None, timeout=None, label=None):
        """Blocking twin of `predict_json_async` (tests, embedding)."""
        request = handlers.parse_json(body)
        inputs_loaded = self.get(name, version, label)
        signature, feeds, rows = handlers.parse_predict(
            inputs_loaded.signatures, request
        )
        result = self.predict_arrays(
            name, feeds, inputs_loaded.version, signature.name, timeout
        )
        return handlers.format_predict(result.outputs, rows)
