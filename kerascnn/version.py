"""The kerascnn version: base level, so `kerascnn.metadata` can record it
without importing the package root (which reaches the model zoo)."""

__version__ = "0.1.0"
