"""Custom Keras layers used by the model zoo (all serializable)."""

from kerascnn.layers.batch_norm import FusedBatchNormalization
from kerascnn.layers.lrn import LocalResponseNormalization
from kerascnn.layers.shortcut import ZeroPadShortcut

__all__ = [
    "FusedBatchNormalization",
    "LocalResponseNormalization",
    "ZeroPadShortcut",
]
