"""Files that are never seen half-written: write beside, then rename.

Every writer of a file that another process (a resumed run, a server
polling for versions, a reader of `metrics.json`) may open at any moment
goes through `atomic_path`: the bytes go to a hidden temporary file in the
same folder, and one `os.replace` puts them in place. A crash or Ctrl-C
leaves the old file (or none), never a truncated one.
"""

import contextlib
import json
import os
import shutil

# What a finished run (and a bare model's sidecar) calls its files; the
# model zoo's weight loader reads them without the inference layer.
METADATA_FILENAME = "metadata.json"
MODEL_FILENAME = "model.keras"


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path` to write to.

    When the block ends without an error the temporary file replaces
    `path`; on any error (KeyboardInterrupt too) it is removed. The name
    keeps `path`'s extension, for writers that insist on one (`.keras`).
    """
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    name = os.path.basename(path)
    tmp = os.path.join(parent, f".tmp-{os.getpid()}-{name}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_bytes(path, data):
    """Writes `data` (bytes) to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_json(path, data, indent=2):
    """Writes `data` as JSON to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(data, f, indent=indent)


def copy_file(source, path):
    """Copies `source` to `path` atomically."""
    with atomic_path(path) as tmp:
        shutil.copyfile(source, tmp)
