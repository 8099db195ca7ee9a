"""Exceptions that the CLI turns into one clear line instead of a traceback.

Every error a user can cause (a bad name, a bad shape, a missing file) is a
`KerasCNNError`. Subclasses say which part of the tool refused the input.
Each also subclasses `ValueError` so library users can catch what they
already expect from Keras.
"""


class KerasCNNError(ValueError):
    """Base class for every user-facing kerascnn error."""


class UnknownModelError(KerasCNNError):
    """A model name that is not in the registry."""


class InvalidArgumentError(KerasCNNError):
    """An argument outside what a builder or function accepts."""


class DataError(KerasCNNError):
    """A data set that cannot be found, read or decoded."""


class BadFileError(DataError):
    """An image file that is empty or cannot be decoded (named in the
    message); `skip_bad` (`--skip-bad`) skips and counts such files."""


class TrainingError(KerasCNNError):
    """A training run that cannot start or that failed (e.g. NaN loss)."""


class ExportError(KerasCNNError):
    """An export that cannot be written or failed its verification."""


class DataNotice(UserWarning):
    """A fact about the data worth one line (files skipped, an image
    inverted); the CLI prints it as `note: ...`, without a source path."""


class RunFileError(TrainingError):
    """A run directory file that cannot be read (named in the message)."""
