"""The model server's core: versions, queues, batching, deadlines, metrics.

    >>> server = ModelServer(ServeOptions(model_base_path="saved_models"))
    >>> result = server.predict_arrays("lenet", {"images": x})
    >>> result.version, result.outputs["class_ids"]
    >>> server.close()

`ModelServer` speaks no wire format: it takes and returns Python and
NumPy objects (arrays, serialized `tf.Example`s, `LoadedVersion`s,
`VersionState`s), as TF Serving's `ServerCore` is independent of its
APIs. The front ends translate: the REST front end (`rest`, with the
JSON codec in `handlers`), the gRPC services (`grpc_service`) and the
Open Inference Protocol's (`v2`). Everything is thread-safe;
`predict_arrays` blocks, and `predict_arrays_async` is its awaitable
twin; every front end goes through the same bounded queue, batcher and
metrics.

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

from kerascnn.serving import arrays, image_feeds, inference
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
from kerascnn.serving.options import DEFAULTS, ServeOptions
from kerascnn.serving.signatures import DEFAULT_SIGNATURE, unknown_signature
from kerascnn.serving.versions import VersionManager

logger = logging.getLogger("kerascnn.serving")

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


class Observed:
    """Counts one request in the metrics however it ends: 200, the
    `ServingError`'s status, or 500 for anything else.

    A front end opens one with `ModelServer.observe` around all of a
    request's work (parsing included, so a malformed body is counted)
    and sets `loaded` once it has found the version that answers.

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
        options: a `ServeOptions` (`DEFAULTS` when `None`). What is served:
            `model_config_file` (TF Serving's model config list), else
            `model_base_path` (a folder of `<name>/<integer version>/`
            SavedModels, or one model's folder of versions, served as
            `model_name` when given). How: `all_versions` (TF Serving's
            `all` version policy, else `latest`),
            `file_system_poll_wait_seconds`, `max_num_load_retries`,
            `load_retry_interval_micros`, the
            batching options (`batching()`), `num_batch_threads`,
            `max_queued_requests` (503 past it), `request_timeout_seconds`
            (504 after it), `allow_version_labels_for_unavailable_models`,
            `servable_versions_always_present`, the `RequestBudget`
            (`max_request_rows`, `max_decoded_pixels`, `max_tensor_bytes`:
            400 past it, checked before the model call) and
            `max_inflight_body_bytes` (the bodies all front ends hold at
            once, `bodies`: 503 past it). The HTTP and gRPC settings are
            the front ends'.

    Attributes:
        options: the `ServeOptions`.
        batching: the `BatchingParameters` in use, or `None`.

    Raises:
        TypeError: `options` is not a `ServeOptions`.
        ServingError: a bad setting, no model folder, or no version could
            be loaded.
    """

    def __init__(self, options=None):
        if options is None:
            options = DEFAULTS
        if not isinstance(options, ServeOptions):
            raise TypeError(
                "ModelServer takes a `ServeOptions` (its model_base_path, "
                "model_name or model_config_file say what to serve). "
                f"Received: options={options!r}"
            )
        self.options = options.validate()
        self.version_policy = "all" if options.all_versions else "latest"
        self.base_path = None
        model_configs = None
        if options.model_config_file:
            model_configs = read_model_config_file(options.model_config_file)
        else:
            base_path = os.fspath(options.model_base_path)
            self.base_path = os.path.abspath(base_path)
            if not os.path.isdir(self.base_path):
                raise ServingError(
                    f"Model base path {base_path!r} is not a folder."
                )
            if options.model_name:
                model_configs = [
                    ModelConfig(
                        options.model_name,
                        self.base_path,
                        self.version_policy,
                    )
                ]
        self.request_timeout = float(options.request_timeout_seconds)
        self.budget = RequestBudget(
            max_request_rows=options.max_request_rows,
            max_decoded_pixels=options.max_decoded_pixels,
            max_tensor_bytes=options.max_tensor_bytes,
        )
        self.bodies = InflightBytes(options.max_inflight_body_bytes)
        self.metrics = Metrics()
        self.versions = VersionManager(
            model_configs,
            self.base_path,
            self.version_policy,
            self.metrics,
            options.max_num_load_retries,
            options.load_retry_interval_micros / 1e6,
            always_present=options.servable_versions_always_present,
        )
        self.batching = options.batching()
        self.scheduler = Scheduler(
            self.batching,
            num_threads=options.num_batch_threads,
            max_queued_requests=options.max_queued_requests,
            metrics=self.metrics,
        )
        try:
            self.versions.reload()
            self.versions.check_started(options.model_base_path)
            self.versions.check_labels(
                options.allow_version_labels_for_unavailable_models
            )
        except BaseException:
            self.scheduler.close(timeout=1)
            raise
        self._parser = ThreadPoolExecutor(
            PARSE_THREADS, thread_name_prefix="kerascnn-parse"
        )
        self._stop = threading.Event()
        self._poller = None
        if options.file_system_poll_wait_seconds:
            self._poller = threading.Thread(
                target=self._poll,
                args=(float(options.file_system_poll_wait_seconds),),
                name="kerascnn-serving-poll",
                daemon=True,
            )
            self._poller.start()

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
            raise unknown_signature(key, loaded.signatures)
        return loaded.signatures[key]

    def status(self, name, version=None, label=None):
        """TF Serving's `GetModelStatus`: the model's `VersionState`s,
        newest first (one, for a version or a label).

        Raises:
            NotFound: an unknown model, or a version it never had.
            BadRequest: both a version and a label.
        """
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
        return [states[v] for v in sorted(states, reverse=True)]

    # --- Counting, deadlines, the queue ---

    def observe(self, name, api="predict", protocol="python"):
        """A `with` block that counts one request in the metrics
        (`Observed`); `api` is "predict", "classify" or "regress"."""
        return Observed(self.metrics, name, api, protocol, self._label)

    def _label(self, name):
        """A model's metrics label: its name only if it is served here."""
        return name if self.versions.lookup(name)[0] else UNKNOWN_MODEL

    async def parse_off_loop(self, body, fn, *args):
        """`fn(*args)`, on a parser thread when `body` is large."""
        if len(body) <= PARSE_OFF_LOOP_BYTES:
            return fn(*args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._parser, fn, *args)

    def time_left(self, timeout, started):
        """Seconds left of a request's deadline, counted from its arrival
        (`time.monotonic()` then: a body parsed off the loop may have
        waited for a parser)."""
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

    def run(self, loaded, signature, feeds, timeout=None):
        """Queues one model call of checked feeds and blocks for its
        outputs (`{output name: np.ndarray}`); the feeds are counted
        against the `RequestBudget` first."""
        task, seconds = self._task(loaded, signature, feeds, timeout)
        future = self.scheduler.submit(task)
        try:
            return future.result(timeout=seconds)
        except TimeoutError:
            future.cancel()
            raise DeadlineExceeded(
                f"Deadline of {seconds:g} s exceeded."
            ) from None

    async def run_async(self, loaded, signature, feeds, timeout=None):
        """`run` for asyncio: awaits the outputs instead of blocking."""
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

    # --- Predicting ---

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
        with self.observe(name, protocol=protocol) as seen:
            call = self._arrays_call(
                seen, inputs, version, signature_name, label
            )
            outputs = self.run(*call, timeout)
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
        with self.observe(name, protocol=protocol) as seen:
            call = self._arrays_call(
                seen, inputs, version, signature_name, None
            )
            outputs = await self.run_async(*call, timeout)
            return PredictResult(name, seen.loaded.version, key, outputs)

    # --- Classify and Regress (tf.Examples) ---

    def examples_call(self, seen, method, serialized, version, label, key):
        """`(loaded, signature, feeds)` of serialized `tf.Example`s for
        the `method` ("classify" or "regress") signature `key`; sets
        `seen.loaded`."""
        seen.loaded = self.get(seen.name, version, label)
        seen.name_signature(key)
        signature = inference.check_signature(seen.loaded, key, method)
        feeds = inference.examples_feed(serialized)
        seen.loaded.check_shapes(signature, feeds)
        return seen.loaded, signature, feeds

    @staticmethod
    def examples_result(method, loaded, key, outputs, count):
        """The `InferenceResult` of a Classify/Regress call's outputs."""
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
        with self.observe(name, api=method, protocol=protocol) as seen:
            call = self.examples_call(
                seen, method, serialized, version, label, key
            )
            outputs = self.run(*call, timeout)
            return self.examples_result(
                method, seen.loaded, key, outputs, len(serialized)
            )
