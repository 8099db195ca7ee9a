"""How a split of images is held: decoded into memory, or streamed.

One home for the memory-budget policy. `choose_storage` decides, from
the estimated decoded size against a memory budget
(`KERASCNN_MEMORY_BUDGET`, default 2 GiB), whether a split is decoded
once into memory (`pipeline.image_dataset`, fastest for small sets) or
streamed (`kerascnn.data.streaming`); `cache` overrides it:

* `"auto"`: memory when the decoded split fits the budget (plain style),
  else a stream without cache;
* `"memory"`: the in-memory array (ImageNet style: a stream whose encoded
  bytes are cached in memory after the first epoch);
* `"disk"`: a stream cached in a `tf.data` cache file under `cache_dir`
  (`cache_file`; decoded pixels at the model size; ImageNet style: the
  encoded bytes);
* `"none"`: a stream that reads every file every epoch.

`storage_line` says the decision, and why, in one line
(`DatasetInfo.storage`).
"""

import hashlib
import os

from kerascnn.errors import DataError

MEMORY_BUDGET_ENV = "KERASCNN_MEMORY_BUDGET"
DEFAULT_MEMORY_BUDGET = 2 * 2**30
CACHE_MODES = ("auto", "memory", "disk", "none")


def memory_budget():
    """Bytes a split may take decoded in memory (`KERASCNN_MEMORY_BUDGET`,
    e.g. `512M`, `4G` or a byte count; default 2 GiB)."""
    raw = os.environ.get(MEMORY_BUDGET_ENV)
    if not raw:
        return DEFAULT_MEMORY_BUDGET
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    text = raw.strip().upper().rstrip("B").rstrip("I")
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(float(text))
    except ValueError:
        raise DataError(
            f"{MEMORY_BUDGET_ENV} must be a size such as 512M or 4G. "
            f"Received: {MEMORY_BUDGET_ENV}={raw!r}"
        ) from None


def check_cache(cache):
    """`cache` as one of `CACHE_MODES` (`True` -> auto, `False` -> none)."""
    if cache is True or cache is None:
        return "auto"
    if cache is False:
        return "none"
    if cache not in CACHE_MODES:
        raise DataError(
            f"`cache` must be one of {CACHE_MODES}. Received: cache={cache!r}"
        )
    return cache


def _size(n):
    if n >= 2**30:
        return f"{n / 2**30:.1f} GiB"
    return f"{n / 2**20:.0f} MiB"


def choose_storage(cache, decoded_bytes, style, data_service=None):
    """`("memory" | "stream", reason)` for a split of image files/records.

    Args:
        cache: a checked `cache` mode.
        decoded_bytes: estimated size of the split decoded at model size.
        style: `"plain"` or `"imagenet"`.
        data_service: a tf.data service address, or `None`.
    """
    size = f"~{_size(decoded_bytes)} decoded"
    if data_service:
        return "stream", f"{size}; decoded by tf.data service workers"
    if style == "imagenet":
        return "stream", f"{size}; ImageNet-style crops need the full files"
    if cache == "memory" or (
        cache == "auto" and decoded_bytes <= memory_budget()
    ):
        why = "forced by cache='memory'" if cache == "memory" else (
            f"fits the {_size(memory_budget())} memory budget"
        )  # fmt: skip
        return "memory", f"{size}, {why}"
    if cache == "auto":
        return "stream", (
            f"{size} > {_size(memory_budget())} memory budget, "
            f"${MEMORY_BUDGET_ENV}"
        )
    return "stream", f"{size}, cache={cache!r}"


def storage_line(storage, reason, n, cache, cache_path=None):
    """The one line that says how a split is read and why.

    A `tf.data` cache fills while the first epoch reads the stream (that
    epoch's progress is the cache's); the line says so, or that a disk
    cache written by an earlier run is read.
    """
    if storage == "memory":
        return f"{n:,} images decoded into memory ({reason})"
    if cache == "memory":
        kept = "cached in memory by the first epoch"
    elif cache == "disk" and cache_complete(cache_path):
        kept = f"cached on disk, read from {cache_path} (already filled)"
    elif cache == "disk":
        kept = f"cached on disk in {cache_path} by the first epoch"
    else:
        kept = "read every epoch"
    return f"{n:,} images streamed, {kept} ({reason})"


def cache_complete(path):
    """Whether the `tf.data` cache file `path` was completely written."""
    return bool(path) and os.path.exists(f"{path}.index")


def cache_file(cache_dir, name, split, shape, style, limit, input_context):
    """A `tf.data` cache file path for one split, size and pipeline.

    Stale lock files of a writer that died are removed (tf.data refuses to
    write next to them), so an interrupted first epoch starts over.
    """
    if not cache_dir:
        raise DataError(
            "cache='disk' needs a folder: pass `cache_dir=` (the CLI uses "
            "the run directory, or --cache disk:FOLDER)."
        )
    os.makedirs(cache_dir, exist_ok=True)
    pipeline = input_context.input_pipeline_id if input_context else 0
    key = f"{os.path.abspath(name)}|{split}|{shape}|{style}|{limit}|{pipeline}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    path = os.path.join(cache_dir, f"{split}-{digest}")
    if not cache_complete(path):
        for entry in os.scandir(cache_dir):
            if entry.name.startswith(os.path.basename(path)) and (
                entry.name.endswith(".lockfile")
            ):
                os.remove(entry.path)
    return path
