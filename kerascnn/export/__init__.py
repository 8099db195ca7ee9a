"""Export a trained model as a SavedModel, TFLite, ONNX or OpenVINO file.

    >>> from kerascnn.export import export
    >>> result = export("runs/lenet-mnist")          # saved_models/lenet/1/
    >>> result = export("runs/lenet-mnist", format="tflite", quantize="int8")
    >>> result = export("runs/lenet-mnist", format="onnx")  # lenet/lenet.onnx
    >>> print(result.verification.table())

Settings are one `ExportConfig` (`config`), validated before the model is
loaded; the keyword form builds the same object. Each format is one
`ExportFormat` in the registry (`formats`): its name, optional packages,
place in the layout, conversion, runtime and `inspect` reader. The four
built-in ones register on import (`builtin_formats`), each converting
through its own module (`saved_model`, `tflite`, `onnx`, `openvino`);
`exporter` runs every format through one stage -> verify -> place
driver; `examples` reads the data to verify and calibrate on, `verify`
checks every artifact against Keras before it is moved into place, and
`inspect` reads artifacts back. A format or quantization mode the
registry does not hold is an `ExportError` naming the choices. ONNX and
OpenVINO need optional extras (`ExportFormat.require` names the one to
install). Every export also rewrites the model card (`model_card`)
beside the version folders.
"""

from kerascnn.export import builtin_formats  # noqa: F401 (registers them)
from kerascnn.export.config import (
    DEFAULT_CALIBRATION_EXAMPLES,
    DEFAULT_VERIFY_EXAMPLES,
    INT8_GRANULARITIES,
    ExportConfig,
)
from kerascnn.export.exporter import ExportResult, export
from kerascnn.export.formats import (
    ExportFormat,
    format_names,
    get_format,
    quantize_modes,
    register_format,
)

__all__ = [
    "DEFAULT_CALIBRATION_EXAMPLES",
    "DEFAULT_VERIFY_EXAMPLES",
    "ExportConfig",
    "ExportFormat",
    "ExportResult",
    "INT8_GRANULARITIES",
    "export",
    "format_names",
    "get_format",
    "quantize_modes",
    "register_format",
]
