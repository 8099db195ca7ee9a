"""Export a trained model as a SavedModel or a TFLite file.

    >>> from kerascnn.export import export
    >>> result = export("runs/lenet-mnist")          # saved_models/lenet/1/
    >>> result = export("runs/lenet-mnist", format="tflite", quantize="int8")
    >>> print(result.verification.table())

One module per format (`saved_model`, `tflite`) behind this dispatcher;
`verify` checks every artifact against Keras before it is moved into place,
and `inspect` reads artifacts back. The list of formats and quantization
modes is closed: anything else is an `ExportError` naming the choices.
"""

import dataclasses
import os

from kerascnn.errors import ExportError
from kerascnn.export import saved_model as _saved_model
from kerascnn.export import tflite as _tflite
from kerascnn.export import verify as _verify
from kerascnn.export import warmup as _warmup

FORMATS = ("saved_model", "tflite")
QUANTIZE_MODES = _tflite.QUANTIZE_MODES
INT8_GRANULARITIES = ("auto", "per_tensor", "per_channel")
DEFAULT_CALIBRATION_EXAMPLES = 500
DEFAULT_VERIFY_EXAMPLES = 500


@dataclasses.dataclass
class ExportResult:
    """What `export` wrote and how it verified.

    Attributes:
        format: `"saved_model"` or `"tflite"`.
        path: the version folder or the `.tflite` file.
        name: model folder name under `base_dir`.
        version: SavedModel version (`None` for TFLite).
        quantize: quantization mode (`"none"` for SavedModels).
        size_bytes: size on disk.
        metadata: the metadata dict written into the artifact.
        verification: a `verify.VerifyReport`, or `None` with
            `verify=False`.
        examples: where verification examples came from: `"test"` (the
            data set's test split), `"given"` (passed in) or `"synthetic"`
            (random inputs: max diff only, no accuracy).
    """

    format: str
    path: str
    name: str
    version: int = None
    quantize: str = "none"
    size_bytes: int = 0
    metadata: dict = dataclasses.field(default_factory=dict)
    verification: object = None
    examples: str = None

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["verification"] = (
            self.verification.to_dict() if self.verification else None
        )
        return d


def _check_choice(arg, value, choices):
    if value not in choices:
        raise ExportError(
            f"Unknown {arg} {value!r}; choose one of: {', '.join(choices)}. "
            f"Received: {arg}={value!r}"
        )


def _check_name(name):
    if not name or os.sep in name or name in (".", "..") or (
        name.startswith(".")
    ):
        raise ExportError(
            "A model name must be a plain folder name. "
            f"Received: name={name!r}"
        )
    return name


def _synthetic_examples(model, meta, count, length=None):
    """Random valid inputs when no real data is at hand (no labels)."""
    import numpy as np

    rng = np.random.default_rng(0)
    if _saved_model.is_tagger(model, meta):
        length = length or 16
        vocab = max(len(meta.vocab), 3)
        x = rng.integers(1, vocab, size=(count, length)).astype(np.int32)
        return x, None
    shape = tuple(model.input_shape[1:])
    pixels = rng.uniform(0, 255, size=(count, *shape)).astype(np.float32)
    normalize = _saved_model.make_normalizer(meta.preprocessing)
    return np.asarray(normalize(pixels)), None


def _examples(model, meta, given, count, data_dir, length=None):
    """`(x, y, source)` for verification."""
    if given is not None:
        x, y = given
        source = "given"
    else:
        loaded = (
            _verify.load_tagger_examples(meta, "test", count, data_dir)
            if _saved_model.is_tagger(model, meta) and meta.dataset == "atis"
            else _verify.load_examples(meta, "test", count, data_dir)
        )
        if loaded is None:
            x, y = _synthetic_examples(model, meta, min(count, 64), length)
            source = "synthetic"
        else:
            (x, y), source = loaded, "test"
    import numpy as np

    x = np.asarray(x)[:count]
    if isinstance(y, _verify.TaggerGold):
        y = y[:count]
    elif y is not None:
        y = np.asarray(y)[:count]
    if length is not None:
        x = _verify.fit_length(x, length)
    return x, y, source


def export(
    source,
    *,
    format="saved_model",
    base_dir="saved_models",
    name=None,
    version=None,
    overwrite=False,
    quantize="none",
    output=None,
    calibration_examples=DEFAULT_CALIBRATION_EXAMPLES,
    verify=True,
    verify_examples=DEFAULT_VERIFY_EXAMPLES,
    max_accuracy_drop=_verify.DEFAULT_MAX_ACCURACY_DROP,
    int8_io=False,
    data_dir=None,
    max_length=None,
    allow_flex=False,
    examples=None,
    calibration_data=None,
    int8_granularity="auto",
):
    """Exports a run directory or `.keras` file; verifies; writes atomically.

    Args:
        source: run directory (`model.keras` + `metadata.json`) or a
            `.keras` file.
        format: `"saved_model"` or `"tflite"`. Defaults to `"saved_model"`.
        base_dir: export root. Defaults to `"saved_models"`.
        name: model folder name. Defaults to the metadata's model name.
        version: SavedModel integer version. Defaults to the highest
            existing version + 1.
        overwrite: replace an existing version or file. Defaults to `False`.
        quantize: TFLite only: `"none"`, `"dynamic"`, `"float16"` or
            `"int8"`. Defaults to `"none"`.
        output: TFLite only: file path. Defaults to
            `<base_dir>/<name>/<name>[-<quantize>].tflite`.
        calibration_examples: int8 only: training examples to calibrate on.
            Defaults to `500`.
        verify: compare with Keras before writing. Defaults to `True`.
        verify_examples: test examples to compare on. Defaults to `500`.
        max_accuracy_drop: allowed accuracy loss of a quantized TFLite, in
            percentage points. Defaults to `1.0`.
        int8_io: int8 only: int8 input/output tensors instead of float.
        data_dir: data root passed to `kerascnn.data.load`.
        max_length: tagger TFLite only: fixed sequence length. Defaults to
            the metadata's `max_length`, else `64`.
        allow_flex: TFLite only: allow TensorFlow (Flex) ops.
        examples: `(x, y)` arrays of model inputs and labels to verify on,
            instead of loading the test split.
        calibration_data: model-input array to calibrate on, instead of
            loading the training split.
        int8_granularity: int8 only: `"per_tensor"` (one scale per weight
            tensor: smallest file), `"per_channel"` (one per output
            channel: most accurate) or `"auto"`: per tensor when it stays
            within `max_accuracy_drop` on the verification examples, else
            per channel (per channel without verification). Defaults to
            `"auto"`.

    Returns:
        An `ExportResult`.

    Raises:
        ExportError: bad arguments, an existing target, a failed
            conversion or a failed verification. Nothing is left behind.
    """
    from kerascnn.metadata import load_model_and_metadata

    _check_choice("format", format, FORMATS)
    _check_choice("quantize", quantize, QUANTIZE_MODES)
    _check_choice("int8_granularity", int8_granularity, INT8_GRANULARITIES)
    if format == "saved_model":
        if quantize != "none" or int8_io or output is not None:
            raise ExportError(
                "quantize, int8_io and output apply to format='tflite' "
                "(--tflite) only."
            )
    if version is not None:
        if format != "saved_model":
            raise ExportError("version applies to SavedModel exports only.")
        version = _saved_model.check_version(version)
    if max_accuracy_drop is not None and max_accuracy_drop < 0:
        raise ExportError(
            "max_accuracy_drop must be >= 0 percentage points. "
            f"Received: max_accuracy_drop={max_accuracy_drop}"
        )
    model, meta = load_model_and_metadata(source)
    name = _check_name(name or meta.model)
    model_dir = os.path.join(os.fspath(base_dir), name)
    if format == "saved_model":
        return _export_saved_model(
            model, meta, model_dir, name, version, overwrite, verify,
            verify_examples, examples, data_dir,
        )
    return _export_tflite(
        model, meta, model_dir, name, quantize, output, overwrite, verify,
        verify_examples, examples, data_dir, max_length, int8_io,
        allow_flex, calibration_examples, calibration_data,
        max_accuracy_drop, int8_granularity,
    )


def _export_saved_model(model, meta, model_dir, name, version, overwrite,
                        verify, verify_examples, examples, data_dir):
    version = version or _saved_model.next_version(model_dir)
    path = os.path.join(model_dir, str(version))
    result = ExportResult("saved_model", path, name, version,
                          metadata=meta.to_dict())

    def verify_fn(tmp):
        count = verify_examples if verify else _warmup.WARMUP_EXAMPLES
        x, y, source = _examples(model, meta, examples, count, data_dir)
        _warmup.write_warmup_requests(tmp, name, meta, x)
        if not verify:
            return None
        result.examples = source
        report = _verify.compare(
            model, _verify.saved_model_runner(tmp), x, y,
            "saved_model", _verify.disk_size(tmp))
        return _verify.check(report, _verify.SAVED_MODEL_TOLERANCE)

    result.verification = _saved_model.export_saved_model(
        model, meta, path, overwrite, verify_fn)
    result.size_bytes = _verify.disk_size(path)
    return result


def _export_tflite(model, meta, model_dir, name, quantize, output,
                   overwrite, verify, verify_examples, examples, data_dir,
                   max_length, int8_io, allow_flex, calibration_examples,
                   calibration_data, max_accuracy_drop, int8_granularity):
    path = os.fspath(output) if output else os.path.join(
        model_dir, _tflite.default_filename(name, quantize))
    if os.path.exists(path) and not overwrite:
        raise ExportError(
            f"{path!r} already exists; pass overwrite=True (--overwrite) "
            "to replace it, or choose another --output."
        )
    metadata = meta.to_dict()
    length = None
    converted, spec = model, {}
    if _saved_model.is_tagger(model, meta):
        length = max_length or meta.max_length or _tflite.DEFAULT_MAX_LENGTH
        converted = _tflite.fixed_length_tagger(
            model, length,
            # In-graph decoding stays float: skipped for int8 (host decodes).
            tag_names=meta.class_names if quantize != "int8" else None)
        spec = dict(input_shape=(length,), input_dtype="int32",
                    input_name="token_ids")
        metadata["max_length"] = length
        metadata["input_shape"] = [length]
    elif max_length is not None:
        raise ExportError("max_length applies to the slot tagger only.")
    if quantize == "int8" and calibration_data is None:
        loaded = _verify.load_examples(
            meta, "train", calibration_examples, data_dir)
        calibration_data = None if loaded is None else loaded[0]
    if calibration_data is not None and length is not None:
        calibration_data = _verify.fit_length(calibration_data, length)
    def convert(per_channel=True):
        return _tflite.convert(
            converted, quantize, representative_data=calibration_data,
            int8_io=int8_io, allow_flex=allow_flex, per_channel=per_channel,
            **spec)

    label = "tflite" if quantize == "none" else f"tflite-{quantize}"
    granularity = None
    if quantize == "int8":
        granularity = _resolve_granularity(
            int8_granularity, verify, max_accuracy_drop,
            lambda data: _verify.compare(
                model, _verify.tflite_runner(data),
                *_examples(model, meta, examples, verify_examples, data_dir,
                           length)[:2], label, len(data)),
            convert)
        data = convert(per_channel=granularity == "per_channel")
    else:
        data = convert()
    metadata["tflite"] = {
        "quantize": quantize,
        "io": "int8" if int8_io else "float",
        "input_shape": [1, *(spec.get("input_shape")
                             or model.input_shape[1:])],
        "builtin_ops_only": not allow_flex,
        "int8_granularity": granularity,
    }
    result = ExportResult("tflite", path, name, quantize=quantize,
                          metadata=metadata)

    def verify_fn(data):
        x, y, result.examples = _examples(
            model, meta, examples, verify_examples, data_dir, length)
        report = _verify.compare(
            model, _verify.tflite_runner(data), x, y, label, len(data))
        if quantize == "none":
            return _verify.check(report, _verify.TFLITE_FLOAT_TOLERANCE)
        return _verify.check(report, max_accuracy_drop=max_accuracy_drop)

    result.verification = _tflite.export_tflite(
        data, metadata, path, overwrite, verify_fn if verify else None)
    result.size_bytes = os.path.getsize(path)
    return result


def _resolve_granularity(choice, verify, max_accuracy_drop, compare,
                         convert):
    """Picks int8 weight-scale granularity; `auto` tries per tensor first.

    Per-tensor scales make the smallest file (ResNet-20: 0.263x the float
    model instead of 0.280x) but can cost accuracy on layers whose
    channels have very different ranges, so `auto` keeps them only when
    the verification examples show no more than the allowed drop.
    """
    if choice != "auto":
        return choice
    if not verify:
        return "per_channel"
    report = compare(convert(per_channel=False))
    drop = report.accuracy_drop
    limit = max_accuracy_drop if max_accuracy_drop is not None else 0.0
    ok = drop is not None and drop <= limit  # no labels: stay safe
    return "per_tensor" if ok else "per_channel"


__all__ = [
    "ExportResult", "FORMATS", "INT8_GRANULARITIES", "QUANTIZE_MODES",
    "export",
]
