"""Custom Keras layers used by the model zoo (all serializable)."""

from kerascnn.layers.lrn import LocalResponseNormalization
from kerascnn.layers.shortcut import ZeroPadShortcut

__all__ = ["LocalResponseNormalization", "ZeroPadShortcut"]
