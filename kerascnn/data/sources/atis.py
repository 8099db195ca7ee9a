"""ATIS: the two `.iob` files, local or downloaded with md5 checks.

Parsing and the dev split (the last 500 training utterances) live in
`kerascnn.data.text`; a source only finds the files.
"""

import os

from kerascnn.data.sources.base import ENV_DATA_DIR, TextSplit
from kerascnn.errors import DataError
from kerascnn.lazy import LazyModule

keras = LazyModule("keras")

ENV_ATIS_URL = "KERASCNN_ATIS_URL"
ATIS_URL = "https://raw.githubusercontent.com/yvchen/JointSLU/master/data/"
ATIS_FILES = {
    "train": ("atis.train.w-intent.iob", "ede48c4eb34493de7d66ac4657624484"),
    "test": ("atis.test.w-intent.iob", "1b4c83c287fd5ec932524a68e21c27f3"),
}
ATIS_DEV_SIZE = 500


def atis_cache_dir():
    """The folder ATIS downloads go to: `~/.keras/datasets/kerascnn_atis`."""
    return os.path.join(
        os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras")),
        "datasets",
        "kerascnn_atis",
    )


def local_atis_files(directory):
    """`{"train": path, "test": path}` if both files are in `directory`."""
    paths = {s: os.path.join(directory, f) for s, (f, _) in ATIS_FILES.items()}
    if all(os.path.isfile(p) for p in paths.values()):
        return paths
    return None


def download_atis(base_url=None, cache_dir=None):
    """Downloads the ATIS `.iob` files with md5 checks.

    Args:
        base_url: folder URL holding the two files (`file://` works);
            defaults to `$KERASCNN_ATIS_URL`, then `ATIS_URL`.
        cache_dir: where to keep them; defaults to `atis_cache_dir()`.

    Returns:
        `{"train": path, "test": path}`.

    Raises:
        DataError: a download failed or a checksum did not match.
    """

    base = base_url or os.environ.get(ENV_ATIS_URL) or ATIS_URL
    base = base if base.endswith("/") else base + "/"
    cache_dir = cache_dir or atis_cache_dir()
    os.makedirs(cache_dir, exist_ok=True)  # else get_file falls back to /tmp
    paths = {}
    for split, (fname, md5) in ATIS_FILES.items():
        try:
            paths[split] = keras.utils.get_file(
                fname, base + fname, file_hash=md5, hash_algorithm="md5",
                cache_dir=cache_dir, cache_subdir="",
            )  # fmt: skip
        except Exception as e:  # get_file raises ValueError or URL errors.
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise DataError(
                f"Could not download ATIS file {fname} from {base + fname} "
                f"(md5 {md5}): {msg}. Set ${ENV_ATIS_URL} to a mirror, or put "
                f"the files in <data_dir>/atis/ and set ${ENV_DATA_DIR}."
            ) from None
    return paths


def read_atis(directory, split, name="atis"):
    """A `TextSplit` of the files in `directory`, downloading
    them when `directory` is `None`."""
    paths = local_atis_files(directory) if directory else None
    if paths is not None:
        source = f"{directory} (ATIS .iob files)"
    else:
        paths = download_atis()
        source = f"{os.path.dirname(paths['train'])} (ATIS, downloaded)"
    return TextSplit(
        name=name, source=source, split=split, split_sizes={}, text_path=paths
    )
