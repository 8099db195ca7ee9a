"""Export settings as data: one `ExportConfig`, validated once.

`export(source, config=ExportConfig(...))` and the older keyword form
`export(source, format="tflite", ...)` build the same object; the
format writers read their settings from it; which formats and
quantization modes exist comes from the registry (`formats`). Arrays
(verification examples, calibration images) are data, not settings, and
stay keyword arguments of `export`.
"""

import dataclasses
import json
import os

from kerascnn import validation as v
from kerascnn.errors import ExportError
from kerascnn.export import formats, layout

INT8_GRANULARITIES = ("auto", "per_tensor", "per_channel")
DEFAULT_CALIBRATION_EXAMPLES = 500
DEFAULT_VERIFY_EXAMPLES = 500
DEFAULT_MAX_ACCURACY_DROP = 1.0  # percentage points


@dataclasses.dataclass
class ExportConfig:
    """Everything that defines one export.

    Attributes:
        format: a registered format (`formats.format_names()`):
            `"saved_model"`, `"tflite"`, `"onnx"` or `"openvino"` (the
            last two need the `[onnx]` / `[openvino]` extras).
        base_dir: export root; models go to `<base_dir>/<name>/`.
        name: model folder name; default: the metadata's model name.
        version: SavedModel integer version; default: highest + 1.
        overwrite: replace an existing version or file.
        force: add a version even when the model folder's newest version
            has other classes or another input signature (see
            `kerascnn.export.layout.check_same_meaning`).
        quantize: one of the format's `quantize_modes` (TFLite:
            `"none"`, `"dynamic"`, `"float16"`, `"int8"`).
        output: TFLite and ONNX: file path; OpenVINO: folder path;
            default `<base_dir>/<name>/<name>[-<quantize>].tflite`,
            `<base_dir>/<name>/<name>.onnx`, `<base_dir>/<name>/openvino/`.
        calibration_examples: int8 only: training examples to calibrate on.
        verify: compare with Keras before anything is written.
        verify_examples: test examples to compare on.
        max_accuracy_drop: allowed accuracy loss of a quantized TFLite, in
            percentage points (`None`: not checked).
        int8_io: int8 only: int8 input/output tensors instead of float.
        data_dir: data root passed to `kerascnn.data.load`.
        max_length: tagger TFLite only: fixed sequence length; default the
            metadata's `max_length`, else 64.
        allow_flex: TFLite only: allow TensorFlow (Flex) ops.
        skip_bad: image files of the verification or calibration data
            that cannot be decoded are skipped and named in one notice;
            without it the first one stops the export, named.
        allow_synthetic: verify on random inputs (max diff only, no
            accuracy) when the test data cannot be loaded, with a warning;
            without it that is an `ExportError`.
        int8_granularity: int8 only: `"per_tensor"` (one scale per weight
            tensor: smallest file), `"per_channel"` (most accurate) or
            `"auto"`: per tensor when it stays within `max_accuracy_drop`
            on the verification examples, else per channel (per channel
            without verification).
        model_card: write `MODEL_CARD.md` and `model_card.json` into
            `<base_dir>/<name>/` (updated by every export of the model).
        command: the command line the card records as the producer;
            default: the equivalent `kerascnn export` call.
    """

    format: str = "saved_model"
    base_dir: str = "saved_models"
    name: str = None
    version: int = None
    overwrite: bool = False
    force: bool = False
    quantize: str = "none"
    output: str = None
    calibration_examples: int = DEFAULT_CALIBRATION_EXAMPLES
    verify: bool = True
    verify_examples: int = DEFAULT_VERIFY_EXAMPLES
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP
    int8_io: bool = False
    data_dir: str = None
    max_length: int = None
    allow_flex: bool = False
    allow_synthetic: bool = False
    skip_bad: bool = False
    int8_granularity: str = "auto"
    model_card: bool = True
    command: str = None

    def validate(self):
        """Raises `ExportError` on settings no export could use.

        Returns the config with `version` as an int and paths as `str`.
        """
        e = ExportError
        formats.get_format(self.format)
        v.check_choice("quantize", self.quantize, formats.quantize_modes(), e)
        v.check_choice(
            "int8_granularity", self.int8_granularity, INT8_GRANULARITIES, e
        )
        for name in ("verify_examples", "calibration_examples"):
            v.check_positive_int(name, getattr(self, name), error=e)
        if self.max_length is not None:
            v.check_positive_int("max_length", self.max_length, error=e)
        if self.max_accuracy_drop is not None:
            v.check_non_negative_number(
                "max_accuracy_drop", self.max_accuracy_drop, error=e
            )
        if self.name is not None:
            check_name(self.name)
        self._check_format_options()
        return self

    def _check_format_options(self):
        export_format = formats.get_format(self.format)
        used = []
        if self.quantize not in export_format.quantize_modes:
            used.append("quantize")
        if self.format != "tflite":
            if self.int8_io:
                used.append("int8_io")
            if self.max_length is not None:
                used.append("max_length")
        if used:
            received = ", ".join(f"{n}={getattr(self, n)!r}" for n in used)
            raise ExportError(
                "`quantize`, `int8_io` and `max_length` apply to "
                f"format='tflite' (--tflite) only. Received: "
                f"format={self.format!r}, {received}"
            )
        versioned = export_format.placement == formats.VERSION
        if versioned and self.output:
            beside = [
                f.name
                for f in formats.all_formats()
                if f.placement != formats.VERSION
            ]
            raise ExportError(
                f"`output` applies to the {_words(beside)} formats "
                "(a SavedModel goes to <base_dir>/<name>/<version>/). "
                f"Received: output={self.output!r}"
            )
        if self.version is not None:
            if not versioned:
                raise ExportError(
                    "`version` applies to SavedModel exports only. "
                    f"Received: format={self.format!r}, "
                    f"version={self.version!r}"
                )
            self.version = check_version(self.version)
        if self.int8_io and self.quantize != "int8":
            raise ExportError(
                "int8 input/output needs quantize='int8'. "
                f"Received: quantize={self.quantize!r}, int8_io=True"
            )

    def model_dir(self, name):
        """`<base_dir>/<name>`: the versions and TFLite files of a model."""
        return os.path.join(os.fspath(self.base_dir), name)

    def artifact_path(self, name):
        """Where a format written beside the versions goes: `output`,
        else its `default_path` (see `output`)."""
        if self.output:
            return os.fspath(self.output)
        export_format = formats.get_format(self.format)
        return export_format.default_path(
            self.model_dir(name), name, self.quantize
        )

    def to_dict(self):
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))

    @classmethod
    def from_settings(cls, config=None, **settings):
        """`config` (or the defaults) with keyword `settings` applied."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - names)
        if unknown:
            raise ExportError(
                f"Unknown export setting(s): {', '.join(unknown)}. "
                f"Choose from: {', '.join(sorted(names))}."
            )
        return dataclasses.replace(config or cls(), **settings).validate()


def _words(names):
    """`"a, b and c"`."""
    *most, last = names
    return f"{', '.join(most)} and {last}" if most else last


def check_name(name):
    """Returns `name` if it is a plain folder name, else `ExportError`."""
    if (
        not isinstance(name, str)
        or not name
        or os.sep in name
        or name.startswith(".")
    ):
        raise ExportError(
            "`name` must be a plain folder name (no path separator, not "
            f"hidden). Received: name={name!r}"
        )
    return name


def check_version(version):
    """Returns `version` as a positive int or raises `ExportError`.

    A string of ASCII digits counts (`"2"`); TensorFlow Serving ignores
    other folder names (`layout.parse_version`).
    """
    if isinstance(version, str) and layout.parse_version(version) is not None:
        version = int(version)
    return v.check_positive_int("version", version, error=ExportError)
