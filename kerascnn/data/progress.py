"""How far the long data steps are: listing a folder, decoding a split
into memory, reading a large array file.

A step counts what it did with `counter(label, total, unit)`; whoever
runs it listens with `reporting(listener)` (`kerascnn.train.fit` passes
its `on_progress`; the CLI draws the line). The listener gets `Step`s:
the first as soon as the step starts, then at most `INTERVAL` seconds
apart, and the last with `finished=True`. Without a listener counting
costs a clock read per update. The library prints nothing itself.

    with progress.reporting(print):
        data.load("/data/food101", "train")   # Listing /data/food101: ...
"""

import contextlib
import dataclasses
import threading
import time

INTERVAL = 0.1  # seconds between two reports of one step
_listeners = threading.local()


@dataclasses.dataclass(frozen=True)
class Step:
    """One report of a data step.

    Attributes:
        label: what is being done, e.g. `"Listing /data/food101"`.
        done: units done so far.
        total: units in all, or `None` when unknown (listing).
        unit: what is counted, e.g. `"files"`.
        finished: the step is over (the last report).
        seconds: time since the step started.
    """

    label: str
    done: int
    total: int = None
    unit: str = ""
    finished: bool = False
    seconds: float = 0.0

    def __str__(self):
        count = f"{self.done:,}"
        if self.total is not None:
            count += f"/{self.total:,}"
        line = f"{self.label}: {count} {self.unit}".rstrip()
        if self.finished:
            line += f" ({self.seconds:.1f} s)"
        return line


@contextlib.contextmanager
def reporting(listener):
    """Sends the `Step`s of the data steps run inside to `listener` (a
    callable `(Step)`); `None` listens to nothing."""
    stack = _stack()
    stack.append(listener)
    try:
        yield
    finally:
        stack.pop()


def _stack():
    if not hasattr(_listeners, "stack"):
        _listeners.stack = []
    return _listeners.stack


class Counter:
    """Counts one step and reports it (see the module docstring).

    Use as a context manager: leaving it reports the finished step
    (not when the step fails: its error says what happened).
    """

    def __init__(self, label, total=None, unit=""):
        stack = _stack()
        self._listener = stack[-1] if stack else None
        self.label, self.total, self.unit = label, total, unit
        self.done = 0
        self._start = self._reported = time.perf_counter()
        self._report(False)

    def add(self, n=1):
        """Counts `n` more units; reports when `INTERVAL` has passed."""
        self.done += n
        now = time.perf_counter()
        if self._listener and now - self._reported >= INTERVAL:
            self._reported = now
            self._report(False)

    def _report(self, finished):
        if self._listener:
            seconds = time.perf_counter() - self._start
            self._listener(
                Step(
                    self.label,
                    self.done,
                    self.total,
                    self.unit,
                    finished,
                    seconds,
                )  # fmt: skip
            )

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        if kind is None:
            self._report(True)


def counter(label, total=None, unit=""):
    """A `Counter` for one data step, reporting to the current listener."""
    return Counter(label, total, unit)
