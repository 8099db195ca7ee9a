"""The versions each served model has loaded, kept in step with the disk.

TF Serving's version policy: `reload` rescans the model folders, loads
and warms new versions before they are switched in, unloads the ones the
policy no longer wants afterwards, retries a failed load a bounded number
of times and never takes the last good version down. Whatever a load or
a warm-up raises marks that version failed, with its error in `status`;
the other versions and models load on. A version that failed is tried
again at the next poll once any file of its folder changes (a folder
still being copied), else after the retry interval.
"""

import logging
import os
import threading
import time

from kerascnn.export import layout
from kerascnn.serving.errors import BadRequest, ServingError
from kerascnn.serving.loading import (
    AVAILABLE,
    END,
    LOADING,
    START,
    VersionState,
    error_code_of,
    file_stamp,
    freeze_heap,
    load_version,
    warn_if_writable_by_others,
)
from kerascnn.serving.model_config import discover_models

logger = logging.getLogger("kerascnn.serving")


class VersionManager:
    """Which versions of which models are loaded, and each one's state.

    Args:
        model_configs: `ModelConfig`s, or `None` to discover the models
            under `base_path` (and pick up new ones on every reload).
        base_path: the folder scanned when `model_configs` is `None`.
        version_policy: `"latest"` or `"all"` for discovered models.
        metrics: the server's `Metrics` (load failures, version counts).
        max_num_load_retries: retries of a failing version before it is
            given up (state END).
        load_retry_interval: seconds between those retries.
        always_present: keep serving a model's versions when all its
            version folders vanish (TF Serving's
            `servable_versions_always_present`).
    """

    def __init__(
        self,
        model_configs,
        base_path,
        version_policy,
        metrics,
        max_num_load_retries,
        load_retry_interval,
        always_present=False,
    ):
        self.always_present = bool(always_present)
        self._checked_paths = set()
        self.base_path = base_path
        self.version_policy = version_policy
        self.metrics = metrics
        self.max_num_load_retries = int(max_num_load_retries)
        self.load_retry_interval = float(load_retry_interval)
        self._discover = model_configs is None
        self._configs = {c.name: c for c in (model_configs or [])}
        self._lock = threading.Lock()  # guards _serving and _states
        self._sync_lock = threading.Lock()  # one rescan at a time
        self._serving = {}  # name -> {version: LoadedVersion}
        self._states = {}  # name -> {version: VersionState}

    def serving(self):
        """`{name: {version: LoadedVersion}}`: what is serving now."""
        with self._lock:
            return {n: dict(v) for n, v in self._serving.items()}

    def lookup(self, name):
        """`(known, {version: LoadedVersion}, {version: VersionState})`."""
        with self._lock:
            known = name in self._states
            return (
                known,
                dict(self._serving.get(name, {})),
                dict(self._states.get(name, {})),
            )

    def resolve_label(self, name, label):
        """The version a label of the model config names.

        Raises:
            BadRequest: the label is not in the model's `version_labels`.
        """
        config = self._configs.get(name)
        labels = config.labels if config is not None else {}
        if label not in labels:
            known = ", ".join(sorted(labels)) or "none"
            raise BadRequest(
                f"Unrecognized servable version label: {label} (labels of "
                f"model {name!r}: {known})."
            )
        return labels[label]

    def check_labels(self, allow_unavailable=False):
        """TF Serving's rule for `version_labels` at start: a label must
        name an AVAILABLE version, unless `allow_unavailable`
        (`--allow_version_labels_for_unavailable_models`) lets a new label
        point at a version still loading (requests get 404 until then)."""
        if allow_unavailable:
            return
        for config in self._configs.values():
            available = self.serving().get(config.name, {})
            for label, version in sorted(config.labels.items()):
                if version not in available:
                    raise ServingError(
                        f"Request to assign label {label!r} to version "
                        f"{version} of model {config.name}, which is not "
                        "currently available for inference (pass "
                        "--allow-version-labels-for-unavailable-models to "
                        "allow it)."
                    )

    def check_started(self, base_path):
        """`ServingError` unless some version of some model loaded."""
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
            if self.base_path is not None:
                self._check_writable(self.base_path)
            for config in self.model_configs():
                self._check_writable(config.base_path)
                try:
                    new, gone = self._sync_model(config)
                except Exception:  # one model must not stop the others
                    logger.exception("Rescanning model %s failed", config.name)
                    continue
                loaded += [(config.name, v) for v in new]
                unloaded += [(config.name, v) for v in gone]
        if loaded or unloaded:
            freeze_heap(unloaded=bool(unloaded))
        self._report_versions()
        return loaded, unloaded

    def _check_writable(self, path):
        if path not in self._checked_paths:
            self._checked_paths.add(path)
            warn_if_writable_by_others(path)

    def _sync_model(self, config):
        found = layout.version_folders(config.base_path)
        states = self._states.setdefault(config.name, {})
        serving = dict(self._serving.get(config.name, {}))
        if not found and serving and self.always_present:
            return [], []  # keep what serves (servable_versions_always_present)
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
            path = found[version]
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
        stamp = file_stamp(path)
        if state is None or (state.error_message and state.stamp != stamp):
            state = states[version] = VersionState(version, stamp=stamp)
        if state.state == END or time.monotonic() < state.next_try:
            return False
        state.state = LOADING
        try:
            loaded = load_version(name, version, path)
        except Exception as e:  # whatever it is, only this version fails
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
        state.error_code = error_code_of(error)
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        state.error_message = first
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
