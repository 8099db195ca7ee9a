"""Bounded work queues and dynamic batching, with TF Serving's knobs.

    >>> scheduler = Scheduler(BatchingParameters(enabled=True))
    >>> future = scheduler.submit(Task(...))   # concurrent.futures.Future

Every model call goes through a `Scheduler`: a fixed set of worker
threads (off the event loop) takes work from per-model bounded queues. A
model whose queue is full rejects new work at once with `Unavailable`
(HTTP 503) instead of letting connections pile up.

With batching on, tasks for the same model, version, signature (and,
unless padding is on, the same non-batch input shapes) join one open
batch; the batch closes when it holds `max_batch_size` rows or when its
first task has waited `batch_timeout_micros`, whichever comes first, as
in TF Serving's `BasicBatchScheduler`. An idle worker also takes an
open batch at once when its timeout is 0, so batches grow exactly when
the workers are busy. One model call then serves the whole batch and
the outputs are split back by rows. A task with several rows counts as
several rows. Signatures whose output shape depends on the content of a
string input (the tagger's `predict_sentences`) are never merged.
"""

import collections
import dataclasses
import logging
import os
import threading
import time
from concurrent.futures import Future

import numpy as np

from kerascnn.serving import arrays
from kerascnn.serving.errors import (
    BadRequest,
    DeadlineExceeded,
    ServingError,
    Unavailable,
)
from kerascnn.serving.options import DEFAULTS
from kerascnn.serving.signatures import run_signature

logger = logging.getLogger("kerascnn.serving")


# === Tasks and batches ===


@dataclasses.dataclass(eq=False)
class Task:
    """One request's model call.

    Attributes:
        model: model name (the queue it counts against).
        version: the loaded version object (keeps it alive while queued).
        signature: the `layout.Signature` to call.
        feeds: `{input name: np.ndarray}`, batch dimension first.
        deadline: `time.monotonic()` after which the task is dropped.
        future: set with `{output name: np.ndarray}` or an error; a
            `concurrent.futures.Future` for blocking callers, or a
            `LoopFuture` for asyncio callers.
    """

    model: str
    version: object
    signature: object
    feeds: dict
    deadline: float
    future: Future = dataclasses.field(default_factory=Future)

    @property
    def rows(self):
        """Rows in the batch dimension (1 for a call without inputs)."""
        for array in self.feeds.values():
            return len(array) if np.ndim(array) else 1
        return 1


class LoopFuture:
    """A task's outcome for an asyncio caller, settled on its own loop.

    The scheduler settles all tasks of one batch that wait on the same
    loop with one `call_soon_threadsafe` (one wake-up of the loop, a pipe
    write) instead of one per task, as `asyncio.wrap_future` would.

    Attributes:
        loop: the caller's event loop.
        waiter: the `asyncio.Future` to await; cancelling it (a caller's
            timeout) makes the scheduler skip the task.
    """

    def __init__(self, loop):
        self.loop = loop
        self.waiter = loop.create_future()

    def set_running_or_notify_cancel(self):
        return not self.waiter.cancelled()

    def done(self):
        return self.waiter.done()


def settle(outcomes):
    """Sets each `(task, value, failed)` outcome on its task's future."""
    by_loop = {}
    for task, value, failed in outcomes:
        future = task.future
        if isinstance(future, LoopFuture):
            by_loop.setdefault(future.loop, []).append(
                (future.waiter, value, failed)
            )
        elif not future.done():
            if failed:
                future.set_exception(value)
            else:
                future.set_result(value)
    for loop, items in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_on_loop, items)
        except RuntimeError:  # the loop has closed: nobody waits any more
            pass


def _settle_on_loop(items):
    for waiter, value, failed in items:
        if waiter.done():  # cancelled by the caller's deadline
            continue
        if failed:
            waiter.set_exception(value)
        else:
            waiter.set_result(value)


@dataclasses.dataclass(eq=False)
class Batch:
    key: tuple
    tasks: list
    rows: int = 0
    opened: float = dataclasses.field(default_factory=time.monotonic)


def batchable(signature):
    """True when requests to `signature` can share one model call.

    Needs inputs with a free batch dimension, outputs with a batch
    dimension, and (for string inputs, whose content decides output
    lengths) outputs whose other dimensions are fixed.
    """
    if not signature.inputs or not signature.outputs:
        return False
    for spec in signature.inputs.values():
        if spec.shape.rank in (None, 0) or spec.shape[0] is not None:
            return False
    text_input = any(
        s.dtype.name == "string" for s in signature.inputs.values()
    )
    for spec in signature.outputs.values():
        if spec.shape.rank in (None, 0):
            return False
        if text_input and any(d is None for d in list(spec.shape)[1:]):
            return False
    return True


def fits_batch(task):
    """True when every feed has the signature's rank (at least 1): a shape
    TensorFlow accepts beyond the signature (a TF1 graph's `[3]` for an
    `x` of shape `(-1, 1)`) runs on its own, never merged."""
    for name, array in task.feeds.items():
        spec = task.signature.inputs[name]
        if np.ndim(array) < 1 or not arrays.fits(array.shape, spec.shape):
            return False
    return True


def _same_rows(feeds):
    return len({len(a) if np.ndim(a) else -1 for a in feeds.values()}) == 1


# === The scheduler ===


class Scheduler:
    """Worker threads fed by bounded per-model queues (see module doc).

    Args:
        batching: a `BatchingParameters`, or `None` to run every request
            on its own.
        num_threads: workers when batching is off. Defaults to the number
            of CPUs (at least 2).
        max_queued_requests: most tasks (queued or running) per model
            before new ones get `Unavailable`.
        metrics: a `metrics.Metrics` (optional).
    """

    def __init__(
        self,
        batching=None,
        num_threads=None,
        max_queued_requests=DEFAULTS.max_queued_requests,
        metrics=None,
    ):
        if batching is not None and not batching.enabled:
            batching = None
        self.batching = batching
        if batching is not None:
            threads = batching.num_batch_threads
        else:
            threads = num_threads or max(2, os.cpu_count() or 1)
        if max_queued_requests < 1:
            raise ServingError(
                "max_queued_requests must be at least 1. Received: "
                f"{max_queued_requests!r}"
            )
        self.max_queued_requests = int(max_queued_requests)
        self.metrics = metrics
        self._cond = threading.Condition()
        self._open = {}  # key -> Batch being filled
        self._ready = collections.deque()  # closed batches
        self._closed_per_key = collections.Counter()
        self._pending = collections.Counter()  # model -> tasks in flight
        self._stopping = False
        self._threads = [
            threading.Thread(
                target=self._work, name=f"kerascnn-serving-{i}", daemon=True
            )
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    # --- Submitting ---

    def pending(self, model):
        """Tasks of `model` queued or running."""
        with self._cond:
            return self._pending[model]

    def submit(self, task):
        """Queues `task`; returns its future. `Unavailable` when full."""
        with self._cond:
            if self._stopping:
                raise Unavailable("The server is shutting down.")
            if self._pending[task.model] >= self.max_queued_requests:
                raise Unavailable(
                    f"Model {task.model!r} has {self.max_queued_requests} "
                    "requests queued (the limit); retry later."
                )
            if self.batching and batchable(task.signature) and fits_batch(task):
                news = self._add_to_batch(task)
            else:
                self._ready.append(Batch(("single",), [task], task.rows))
                news = True
            self._pending[task.model] += 1
            self._report_depth(task.model)
            if news:  # a task joining an open batch changes no deadline
                self._cond.notify()
        return task.future

    def _key(self, task):
        key = (task.model, id(task.version), task.signature.name)
        if self.batching.pad_variable_length_inputs:
            strings = tuple(
                a.shape[1:] for a in task.feeds.values() if a.dtype == object
            )
            return key + strings
        return key + tuple(a.shape[1:] for a in task.feeds.values())

    def _add_to_batch(self, task):
        """Adds `task` to its open batch; True when a batch was opened or
        closed (news for the workers)."""
        limit = self.batching.max_batch_size
        if not _same_rows(task.feeds):
            raise BadRequest("Every input must have the same batch size.")
        if task.rows > limit:
            raise BadRequest(
                f"Task size {task.rows} is larger than maximum batch size "
                f"{limit}; send at most {limit} instances per request."
            )
        key = self._key(task)
        batch = self._open.get(key)
        news = batch is None
        if batch is not None and batch.rows + task.rows > limit:
            self._close(batch)
            batch, news = None, True
        if batch is None:
            if self._closed_per_key[key] >= self.batching.max_enqueued_batches:
                raise Unavailable(
                    f"Model {task.model!r} has "
                    f"{self.batching.max_enqueued_batches} batches waiting "
                    "(--max-enqueued-batches); retry later."
                )
            batch = self._open[key] = Batch(key, [])
        batch.tasks.append(task)
        batch.rows += task.rows
        if batch.rows >= limit:
            self._close(batch)
            news = True
        return news

    def _close(self, batch):
        if self._open.get(batch.key) is batch:
            del self._open[batch.key]
        self._closed_per_key[batch.key] += 1
        self._ready.append(batch)

    def _report_depth(self, model):
        if self.metrics is not None:
            self.metrics.set_queue_depth(model, self._pending[model])

    # --- Working ---

    def _next_batch(self):
        """Blocks until a batch is due; `None` when stopping."""
        timeout = (
            (self.batching.batch_timeout_micros / 1e6)
            if (self.batching)
            else 0.0
        )
        with self._cond:
            while True:
                if self._ready:
                    batch = self._ready.popleft()
                    if batch.key[0] != "single":
                        self._closed_per_key[batch.key] -= 1
                        if not self._closed_per_key[batch.key]:
                            del self._closed_per_key[batch.key]
                    return batch
                if self._open:
                    oldest = min(self._open.values(), key=lambda b: b.opened)
                    wait = oldest.opened + timeout - time.monotonic()
                    if wait <= 0 or self._stopping:
                        del self._open[oldest.key]
                        return oldest
                    self._cond.wait(wait)
                    continue
                if self._stopping:
                    return None
                self._cond.wait()

    def _work(self):
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                outcomes = self._run(batch)
            except Exception as e:  # never let a worker die
                logger.exception("Batch failed")
                outcomes = [
                    (t, _as_serving_error(e), True) for t in batch.tasks
                ]
            with self._cond:
                for task in batch.tasks:
                    self._pending[task.model] -= 1
                self._report_depth(batch.tasks[0].model)
            settle(outcomes)

    def _run(self, batch):
        """Runs a batch; returns `(task, outputs or error, failed)` per
        task that is still wanted."""
        now = time.monotonic()
        live, outcomes = [], []
        for task in batch.tasks:
            if not task.future.set_running_or_notify_cancel():
                continue  # the caller gave up already
            if now > task.deadline:
                late = DeadlineExceeded(
                    "The request's deadline passed while it was queued."
                )
                outcomes.append((task, late, True))
                continue
            live.append(task)
        if len(live) == 1:
            outcomes.append(_run_one(live[0], self.metrics))
        elif live:
            outcomes.extend(self._run_merged(live))
        return outcomes

    def _run_merged(self, tasks):
        signature = tasks[0].signature
        feeds, sizes = merge_feeds(
            [t.feeds for t in tasks],
            pad=self.batching.pad_variable_length_inputs,
            pad_value=self.batching.pad_value,
        )
        try:
            outputs = run_signature(signature, feeds)
        except BadRequest:
            # One bad request must not fail its neighbours: run alone.
            return [_run_one(task, self.metrics) for task in tasks]
        except Exception as e:
            error = _as_serving_error(e)
            return [(task, error, True) for task in tasks]
        if self.metrics is not None:
            self.metrics.observe_batch(tasks[0].model, signature.name, sizes)
        parts = split_outputs(outputs, tasks, feeds)
        return [(task, part, False) for task, part in zip(tasks, parts)]

    # --- Stopping ---

    def close(self, timeout=30.0):
        """Finishes queued work, then stops the workers."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))


def _as_serving_error(error):
    if isinstance(error, ServingError):
        return error
    return ServingError(f"Internal error: {type(error).__name__}")


def _run_one(task, metrics):
    """`(task, outputs or error, failed)` of one task run on its own."""
    try:
        outputs = run_signature(task.signature, task.feeds)
    except Exception as e:
        return task, _as_serving_error(e), True
    if metrics is not None:
        metrics.observe_batch(task.model, task.signature.name, [task.rows])
    return task, outputs, False


def merge_feeds(feeds_list, pad=False, pad_value=0):
    """Concatenates per-task feeds along the batch dimension.

    With `pad`, numeric inputs are padded with `pad_value` (0 by default;
    e.g. the padding token id of a text model) to the largest size of
    each dimension first. Returns `(feeds, rows per task)`.
    """
    merged = {}
    for name in feeds_list[0]:
        parts = [f[name] for f in feeds_list]
        if pad and parts[0].dtype != object:
            target = np.max([a.shape for a in parts], axis=0)[1:]
            parts = [
                np.pad(
                    a,
                    [(0, 0)]
                    + [(0, int(t) - d) for t, d in zip(target, a.shape[1:])],
                    constant_values=pad_value,
                )
                for a in parts
            ]
        merged[name] = np.concatenate(parts, axis=0)
    return merged, [len(next(iter(f.values()))) for f in feeds_list]


def split_outputs(outputs, tasks, merged_feeds):
    """Splits batched outputs back per task (rows in submission order).

    A padded dimension of an output (same size as a padded input
    dimension) is trimmed back to the task's own size.
    """
    padded = {}  # padded size -> input (name, axis)
    for name, array in merged_feeds.items():
        for axis in range(1, array.ndim):
            padded.setdefault(array.shape[axis], (name, axis))
    parts, start = [], 0
    for task in tasks:
        stop = start + task.rows
        part = {}
        for name, array in outputs.items():
            piece = array[start:stop]
            index = [slice(None)] * piece.ndim
            for axis in range(1, piece.ndim):
                source = padded.get(piece.shape[axis])
                if source is not None:
                    own = task.feeds[source[0]].shape[source[1]]
                    index[axis] = slice(0, own)
            part[name] = piece[tuple(index)]
        parts.append(part)
        start = stop
    return parts
