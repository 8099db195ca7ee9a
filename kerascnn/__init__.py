"""kerascnn: classic convolutional and recurrent networks in Keras 3.

Train them (`kerascnn.train`), feed them (`kerascnn.data`), export them
(`kerascnn.export`) and serve them. The model zoo lives in
`kerascnn.models`; `build(name, ...)` and `list_models()` are re-exported
here for convenience.
"""

import os
import sys

from kerascnn.version import __version__


def _enable_onednn():
    """Turns on oneDNN kernels unless the user chose otherwise.

    TensorFlow 2.21 enables oneDNN only on CPUs with AVX-512 VNNI/BF16 or
    AMX; elsewhere (e.g. AVX2-only AMD Zen 3) convolutions fall back to
    Eigen kernels split into thousands of tiny tasks, and training is
    slower (measured: benchmarks/README.md). The variable is read when
    TensorFlow is first imported, so it must be set before that.
    """
    if "TF_ENABLE_ONEDNN_OPTS" in os.environ:
        return
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"
    if "tensorflow" in sys.modules:
        import warnings

        warnings.warn(
            "kerascnn was imported after TensorFlow, so oneDNN kernels stay "
            "off (training is slower on AVX2 CPUs). Import kerascnn "
            "first or set TF_ENABLE_ONEDNN_OPTS=1.",
            stacklevel=3,
        )


_enable_onednn()

from kerascnn.errors import KerasCNNError  # noqa: E402


def build(name, **kwargs):
    """Builds a registered model; see `kerascnn.models.build`."""
    # The root package stays light: the zoo loads Keras.
    from kerascnn import models

    return models.build(name, **kwargs)


def list_models(pattern="*"):
    """Lists registered model names; see `kerascnn.models.list_models`."""
    # The root package stays light: the zoo loads Keras.
    from kerascnn import models

    return models.list_models(pattern)


__all__ = ["KerasCNNError", "__version__", "build", "list_models"]
