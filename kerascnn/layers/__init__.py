"""Custom Keras layers used by the model zoo (all serializable)."""

from kerascnn.layers.batch_norm import FusedBatchNormalization
from kerascnn.layers.lrn import LocalResponseNormalization
from kerascnn.layers.shortcut import ZeroPadShortcut
from kerascnn.layers.text import IntentPool, WordDropout

__all__ = [
    "FusedBatchNormalization",
    "IntentPool",
    "LocalResponseNormalization",
    "WordDropout",
    "ZeroPadShortcut",
]
