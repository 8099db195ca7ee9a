"""Shared fixtures: quiet TensorFlow, the real-data folder, a CLI runner,
and the one real LeNet run the train, export, picture and CLI tests read."""

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


@pytest.fixture(scope="session")
def lenet_fit(tmp_path_factory, data_dir):
    """One epoch of LeNet on 2,000 real MNIST digits through
    `kerascnn.train.fit` (the `FitResult`): the run directory is exactly
    what `kerascnn fit` writes (model, metadata, checkpoints, history,
    metrics on 2,000 test digits, initial filters, curves).

    Trained once per session and shared: tests read it; a test that must
    change it copies it first.
    """
    # Imported here, not at the top: collecting the tests that need no
    # model should not import TensorFlow.
    from kerascnn.config import recipe_for
    from kerascnn.train import fit
    from tests.helpers import SHORT_LENET_RUN

    config = recipe_for(
        "lenet",
        data_dir=data_dir,
        **SHORT_LENET_RUN,
        runs_root=str(tmp_path_factory.mktemp("runs")),
        export=False,
        log_format="quiet",
    )
    return fit(config, resume=False)


@pytest.fixture(scope="session")
def lenet_run(lenet_fit):
    """The run directory (a `str`) of `lenet_fit`."""
    return lenet_fit.run_dir


@pytest.fixture
def runner():
    from click.testing import CliRunner

    return CliRunner()


@pytest.fixture(autouse=True)
def _clear_keras_session():
    yield
    import keras

    keras.backend.clear_session()
