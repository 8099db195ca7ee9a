"""Optional exporter packages: import them, or say which extra to install.

ONNX and OpenVINO export need packages that a plain `pip install kerascnn`
does not bring (`pip install 'kerascnn[onnx]'`, `'kerascnn[openvino]'`).
`require` imports each one and turns a missing package into one
`ExportError` line that names the extra, before any model is loaded.
"""

import importlib

from kerascnn.errors import ExportError

# format -> (extra, modules it needs, in import order)
PACKAGES = {
    "onnx": ("onnx", ("onnx", "tf2onnx", "onnxruntime")),
    "openvino": ("openvino", ("openvino", "scipy")),
}


def require(format_name):
    """Imports the packages of `format_name`; `ExportError` if one is missing.

    Returns:
        `{module name: module}`.
    """
    extra, names = PACKAGES[format_name]
    modules = {}
    for name in names:
        try:
            modules[name] = importlib.import_module(name)
        except ImportError:
            raise ExportError(
                f"{format_name} export needs the optional package "
                f"'{name}', which is not installed; install it with: "
                f"pip install 'kerascnn[{extra}]'"
            ) from None
    return modules
