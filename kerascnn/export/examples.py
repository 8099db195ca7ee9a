"""The examples an export verifies, warms up and calibrates on.

Verification reads the data set's test split, int8 calibration its
training split (`kerascnn.data.load(meta.dataset, ...)`, already
normalized for the model; a task may read its own: the slot tagger reads
real ATIS sentences with their gold tag strings,
`Task.verification_examples`). Callers may pass arrays instead. Every set of
examples says where it came from (`Examples.description`, e.g.
`"mnist test split (500 examples)"`), and that text is what an export
reports as `verified_on` / `calibrated_on`.

When the test split cannot be read, verification fails with the reason,
unless the caller allows synthetic inputs (`allow_synthetic=True`,
`--allow-synthetic`): then random valid inputs are used, with a warning,
and the export says "synthetic inputs" (max diff only, no accuracy).
Calibration never falls back: int8 scales from random pixels would be
wrong for real images.
"""

import dataclasses
import warnings

from kerascnn.data import load
from kerascnn.data.decode import bad_file_error
from kerascnn.data.shapes import image_args
from kerascnn.errors import BadFileError, DataError, ExportError
from kerascnn.evaluation import (
    recorded_normalization,
    recorded_validation_split,
    resolve_split,
)
from kerascnn.export.saved_model import make_normalizer
from kerascnn.lazy import LazyModule

np = LazyModule("numpy")

SYNTHETIC_EXAMPLES = 64


class SyntheticVerificationWarning(UserWarning):
    """An export is verified on random inputs (`allow_synthetic=True`)."""


@dataclasses.dataclass
class Examples:
    """Model inputs, labels and where they came from.

    Attributes:
        x: numpy model inputs `(N, ...)`.
        y: labels `(N,)`, a task's own labels that slice like an
            array (the slot tagger's gold tag strings), or `None`
            (synthetic).
        source: `"test"`, `"train"`, `"given"` or `"synthetic"`.
        description: e.g. `"mnist test split (500 examples)"`.
    """

    x: object
    y: object
    source: str
    description: str


# === Reading real examples ===


def _as_numpy(value):

    if isinstance(value, dict):
        value = value.get(
            "token_ids", value.get("tags", next(iter(value.values())))
        )
    return np.asarray(value)


def _stack(values):
    """Stacks arrays; pads 1-D sequences of different lengths with 0."""

    values = [np.asarray(v) for v in values]
    if values[0].ndim == 1 and len({len(v) for v in values}) > 1:
        out = np.zeros(
            (len(values), max(len(v) for v in values)), values[0].dtype
        )
        for i, v in enumerate(values):
            out[i, : len(v)] = v
        return out
    return np.stack(values)


def unreadable(meta, split, error):
    """The `ExportError` of a split of `meta.dataset` that cannot be read."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return ExportError(
        f"Cannot read the {split} split of {meta.dataset!r}: "
        f"{type(error).__name__}: {first}"
    )


def load_examples(meta, split="test", limit=500, data_dir=None,
                  skip_bad=False):  # fmt: skip
    """`(x, y)` numpy arrays of the first `limit` real examples.

    Reads `kerascnn.data.load(meta.dataset, split, limit=limit, ...)`,
    which normalizes features for the model: the first `limit` examples
    of the split, unaugmented, at the model's input size. An image file
    that cannot be decoded stops the export, named, as it stops `fit`;
    with `skip_bad` it is skipped and named in one notice.

    Raises:
        ExportError: no data set in the metadata, or it cannot be read
            (the message says why).
    """

    if not meta.dataset:
        raise ExportError(
            "The metadata names no data set to read examples from. "
            f"Received: dataset={meta.dataset!r}"
        )
    held_out = recorded_validation_split(meta)
    image_size, channels = image_args(meta.input_shape)
    try:
        ds, _ = load(
            meta.dataset,
            split=split,
            data_dir=data_dir,
            limit=limit,
            shuffle=split == "train",
            augment=False,
            validation_size=held_out,
            normalization=recorded_normalization(meta),
            image_size=image_size,
            channels=channels,
            skip_bad=skip_bad,
        )
        pairs = [
            (_as_numpy(f), _as_numpy(y)) for f, y in ds.as_numpy_iterator()
        ]
    except BadFileError:
        raise  # names the file and --skip-bad, as fit does
    except Exception as e:  # DataError, missing files, decode errors
        raise bad_file_error(e) or unreadable(meta, split, e) from None
    if not pairs:
        raise ExportError(f"The {split} split of {meta.dataset!r} is empty.")
    xs, ys = zip(*pairs)
    if xs[0].ndim != len(meta.input_shape):  # batched: flatten to examples
        xs = [row for batch in xs for row in batch]
        ys = [row for batch in ys for row in batch]
    return _stack(xs)[:limit], _stack(ys)[:limit]


def fit_length(x, length):
    """Pads with 0 / truncates token ids `(N, T)` to `(N, length)`."""

    out = np.zeros((len(x), length), np.int32)
    n = min(length, x.shape[1])
    out[:, :n] = x[:, :n]
    return out


def load_test_examples(meta, count, data_dir=None, skip_bad=False):
    """`(x, y, split)`: the first `count` examples of the test split, or
    of the held-out split of a data set without one (a flat folder)."""
    split = _test_or_held_out(meta, data_dir)
    x, y = load_examples(meta, split, count, data_dir, skip_bad)
    return x, y, split


def random_pixels(model, meta, count):
    """Random images, normalized like the training data."""

    rng = np.random.default_rng(0)
    shape = tuple(model.input_shape[1:])
    pixels = rng.uniform(0, 255, size=(count, *shape)).astype(np.float32)
    return np.asarray(make_normalizer(meta.preprocessing)(pixels))


# === One export's examples, read once ===


def _described(x, y, source, what, noun):

    x = np.asarray(x)
    text = {
        "given": f"given examples ({len(x)} {noun})",
        "synthetic": f"synthetic inputs ({len(x)} random {noun}, no labels)",
    }.get(source, f"{what} {source} split ({len(x)} {noun})")
    return Examples(x, y, source, text)


class ExportData:
    """The examples of one export, each set read at most once.

    Args:
        model, meta: the Keras model and its `ModelMetadata`.
        config: the validated `ExportConfig` (counts, `data_dir`,
            `allow_synthetic`).
        task: the model's `Task` (which examples, what they are called,
            random inputs).
        examples: `(x, y)` to verify on instead of the test split.
        calibration_data: inputs to calibrate int8 on instead of the
            training split.
    """

    def __init__(
        self,
        model,
        meta,
        config,
        task,
        examples=None,
        calibration_data=None,
    ):
        self.model, self.meta, self.config = model, meta, config
        self.task = task
        self.given, self.given_calibration = examples, calibration_data
        self._cache = {}

    def _fit(self, found, count, length=None):

        x, y = np.asarray(found.x)[:count], found.y
        if isinstance(y, (list, tuple)):
            y = np.asarray(y)
        if y is not None:  # an array, or a task's own labels that slice
            y = y[:count]
        if length is not None:  # a fixed-length TFLite model (the tagger)
            x = fit_length(x, length)
        return _described(
            x, y, found.source, self.meta.dataset, self.task.example_noun
        )

    def _read_test(self, count):
        if self.given is not None:
            return Examples(*self.given, "given", "")
        x, y, split = self.task.verification_examples(
            self.meta, count, self.config.data_dir, self.config.skip_bad
        )
        return Examples(x, y, split, "")

    def verification(self, count=None, warm_up_only=False, length=None):
        """`Examples` to verify on: given, else the test split (token ids
        padded or cut to `length` when given).

        Raises `ExportError` when the test split cannot be read, unless
        synthetic inputs are allowed (or only warm-up requests need
        them: those claim nothing about accuracy).
        """
        count = count or self.config.verify_examples
        if count not in self._cache:
            try:
                found = self._read_test(count)
            except ExportError as e:
                if not (warm_up_only or self.config.allow_synthetic):
                    raise _no_test_data(e) from None
                found = self._synthetic(e, count, warn=not warm_up_only)
            self._cache[count] = found
        return self._fit(self._cache[count], count, length)

    def _synthetic(self, error, count, warn):
        if warn:
            warnings.warn(
                f"Verifying on synthetic inputs (max diff only, no "
                f"accuracy): {error}",
                SyntheticVerificationWarning,
                stacklevel=3,
            )
        count = min(count, SYNTHETIC_EXAMPLES)
        x = self.task.synthetic_inputs(self.model, self.meta, count)
        return Examples(x, None, "synthetic", "")

    def calibration(self, length=None):
        """`Examples` (no labels) to calibrate int8 on; never synthetic."""
        count = self.config.calibration_examples
        if self.given_calibration is not None:
            found = Examples(self.given_calibration, None, "given", "")
        else:
            try:
                x, _ = load_examples(
                    self.meta, "train", count, self.config.data_dir,
                    self.config.skip_bad,
                )  # fmt: skip
            except ExportError as e:
                raise ExportError(
                    f"int8 calibrates on real training examples: {e} Pass "
                    "data_dir (--data-dir) or calibration_data."
                ) from None
            found = Examples(x, None, "train", "")
        return self._fit(found, count, length)


def _test_or_held_out(meta, data_dir):
    """ "test", or "validation" for a data set without a test split (a
    flat image folder): the held-out split the run trained beside."""
    held_out = recorded_validation_split(meta)
    try:
        return resolve_split(meta.dataset, "test", data_dir, held_out)[0]
    except DataError:
        return "test"  # load_examples reports why it cannot be read


def _no_test_data(error):
    return ExportError(
        f"Cannot verify on real test data: {error} Pass data_dir "
        "(--data-dir), examples=(x, y), allow_synthetic=True "
        "(--allow-synthetic) to verify on random inputs (max diff only, "
        "no accuracy), or verify=False (--no-verify)."
    )
