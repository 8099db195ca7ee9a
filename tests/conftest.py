"""Shared fixtures: quiet TensorFlow, the real-data folder, a CLI runner."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import kerascnn  # noqa: E402,F401  (TensorFlow flags, before any TF import)


@pytest.fixture(scope="session")
def data_dir():
    """The real data sets (`KERASCNN_DATA_DIR`, set by .ci/run)."""
    path = os.environ.get("KERASCNN_DATA_DIR")
    if not path or not os.path.isdir(path):
        message = "KERASCNN_DATA_DIR is not set to the shared data folder"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must exercise the real-data tests
        pytest.skip(message)
    # Absolute: subprocess tests run in temporary working directories.
    return os.path.abspath(path)


@pytest.fixture
def runner():
    from click.testing import CliRunner

    return CliRunner()


@pytest.fixture(autouse=True)
def _clear_keras_session():
    yield
    import keras

    keras.backend.clear_session()
