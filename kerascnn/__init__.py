"""kerascnn: classic convolutional and recurrent networks in Keras 3.

Train them (`kerascnn.train`), feed them (`kerascnn.data`), export them
(`kerascnn.export`) and serve them. The model zoo lives in
`kerascnn.models`; `build(name, ...)` and `list_models()` are re-exported
here for convenience.
"""

__version__ = "0.1.0"

from kerascnn.errors import KerasCNNError  # noqa: E402


def build(name, **kwargs):
    """Builds a registered model; see `kerascnn.models.build`."""
    from kerascnn import models

    return models.build(name, **kwargs)


def list_models(pattern="*"):
    """Lists registered model names; see `kerascnn.models.list_models`."""
    from kerascnn import models

    return models.list_models(pattern)


__all__ = ["KerasCNNError", "__version__", "build", "list_models"]
