"""Export a trained model as a SavedModel, TFLite, ONNX or OpenVINO file.

    >>> from kerascnn.export import export
    >>> result = export("runs/lenet-mnist")          # saved_models/lenet/1/
    >>> result = export("runs/lenet-mnist", format="tflite", quantize="int8")
    >>> result = export("runs/lenet-mnist", format="onnx")  # lenet/lenet.onnx
    >>> print(result.verification.table())

Settings are one `ExportConfig` (`config`), validated before the model is
loaded; the keyword form builds the same object. One module per format
(`saved_model`, `tflite`, `onnx`, `openvino`) behind the pipeline in
`exporter`;
`examples` reads the data to verify and calibrate on, `verify` checks
every artifact against Keras before it is moved into place, and
`inspect` reads artifacts back.
The list of formats and quantization modes is closed: anything else is an
`ExportError` naming the choices. ONNX and OpenVINO need optional extras
(`optional.require` names the one to install). Every export also
rewrites the model card (`model_card`) beside the version folders.
"""

from kerascnn.export.config import (
    DEFAULT_CALIBRATION_EXAMPLES,
    DEFAULT_VERIFY_EXAMPLES,
    FILE_FORMATS,
    FORMATS,
    INT8_GRANULARITIES,
    QUANTIZE_MODES,
    ExportConfig,
)
from kerascnn.export.exporter import ExportResult, export

__all__ = [
    "DEFAULT_CALIBRATION_EXAMPLES",
    "DEFAULT_VERIFY_EXAMPLES",
    "ExportConfig",
    "ExportResult",
    "FILE_FORMATS",
    "FORMATS",
    "INT8_GRANULARITIES",
    "QUANTIZE_MODES",
    "export",
]
