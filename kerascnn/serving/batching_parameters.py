"""TF Serving's batching knobs, from flags or a `--batching_parameters_file`.

The field names are TF Serving's `BatchingParameters`; the file is its
text format (`max_batch_size { value: 32 }`), read without protobuf so
that a typo gets a line naming the key.
"""

import dataclasses
import os
import re

from kerascnn.serving.errors import ServingError


@dataclasses.dataclass
class BatchingParameters:
    """TF Serving's batching parameters (`--batching_parameters_file`).

    Attributes:
        enabled: merge concurrent requests (`--enable_batching`).
        max_batch_size: most rows in one model call.
        batch_timeout_micros: longest a batch waits to fill up; 0 sends
            whatever is queued as soon as a worker is free.
        num_batch_threads: worker threads running model calls.
        max_enqueued_batches: closed batches that may wait per queue; more
            work is rejected with 503.
        pad_variable_length_inputs: pad numeric inputs along variable
            dimensions so that requests of different lengths share a
            batch; outputs are trimmed back.
        pad_value: the value padding uses (`--pad-value`; kerascnn's own
            knob, TF Serving has none). Defaults to 0.
    """

    enabled: bool = True
    max_batch_size: int = 32
    batch_timeout_micros: int = 0
    num_batch_threads: int = dataclasses.field(
        default_factory=lambda: max(2, os.cpu_count() or 1)
    )
    max_enqueued_batches: int = 64
    pad_variable_length_inputs: bool = False
    pad_value: float = 0

    def __post_init__(self):
        for name in (
            "max_batch_size",
            "num_batch_threads",
            "max_enqueued_batches",
        ):
            if int(getattr(self, name)) < 1:
                raise ServingError(
                    f"Batching parameter {name} must be at least 1. "
                    f"Received: {name}={getattr(self, name)!r}"
                )
        if int(self.batch_timeout_micros) < 0:
            raise ServingError(
                "Batching parameter batch_timeout_micros must be >= 0. "
                f"Received: {self.batch_timeout_micros!r}"
            )


_PARAM = re.compile(r"(\w+)\s*:?\s*\{\s*value\s*:\s*([^\s}]+)\s*\}")
_FILE_KEYS = {
    "max_batch_size": int,
    "batch_timeout_micros": int,
    "num_batch_threads": int,
    "max_enqueued_batches": int,
    "pad_variable_length_inputs": lambda v: v.lower() == "true",
    "pad_value": float,
}


def read_batching_parameters(path, **overrides):
    """Reads TF Serving's `--batching_parameters_file` text format.

        max_batch_size { value: 32 }
        batch_timeout_micros { value: 1000 }
        num_batch_threads { value: 2 }

    Unknown keys (e.g. `allowed_batch_sizes`) are an error, not ignored.
    """
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise ServingError(f"Cannot read batching parameters: {e}") from None
    text = re.sub(r"#.*", "", text)
    values = {}
    for key, value in _PARAM.findall(text):
        if key not in _FILE_KEYS:
            raise ServingError(
                f"{path}: unsupported batching parameter {key!r}; "
                f"supported: {', '.join(_FILE_KEYS)}."
            )
        try:
            values[key] = _FILE_KEYS[key](value)
        except ValueError:
            raise ServingError(
                f"{path}: {key} must be a number; received {value!r}."
            ) from None
    rest = _PARAM.sub("", text).strip()
    if rest:
        raise ServingError(
            f"{path}: cannot parse {rest.splitlines()[0]!r}; expected lines "
            "like 'max_batch_size { value: 32 }'."
        )
    values.update({k: v for k, v in overrides.items() if v is not None})
    return BatchingParameters(enabled=True, **values)
