"""The model zoo: Functional-API builders behind a name registry.

    >>> from kerascnn import models
    >>> models.list_models("resnet*")[:3]
    ['resnet18', 'resnet20', 'resnet32']
    >>> model = models.build("lenet", input_shape=(28, 28, 1), num_classes=10)

Importing this package imports every family module, which registers its
variants; nothing needs registering by hand.
"""

from kerascnn.models import (
    alexnet,  # noqa: F401
    lenet,  # noqa: F401
    resnet,  # noqa: F401
    simple_convnet,  # noqa: F401
    slot_tagger,  # noqa: F401
    vgg,  # noqa: F401
)
from kerascnn.models.registry import (
    ModelInfo,
    build,
    get_model_info,
    list_models,
    register_model,
)

__all__ = [
    "ModelInfo",
    "build",
    "get_model_info",
    "list_models",
    "register_model",
]
