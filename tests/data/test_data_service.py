"""tf.data service: an in-process dispatcher and one worker on 127.0.0.1
decode and augment a streamed folder for this process.

TensorFlow's servers listen on every interface, so these tests run only
inside a loopback-only network namespace, started by
tests/data/test_data_service_netns.py.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from kerascnn.data import load
from kerascnn.errors import DataError
from tests.data.netns_pytest import ENV
from tests.data.test_streaming import batches, folder  # noqa: F401

pytestmark = pytest.mark.skipif(
    os.environ.get(ENV) != "1",
    reason="runs inside a loopback-only network namespace "
    "(test_data_service_netns.py)",
)


@pytest.fixture(scope="module")
def service():
    """A dispatcher and one worker, both on this host."""
    service = tf.data.experimental.service
    dispatcher = service.DispatchServer(service.DispatcherConfig(port=0))
    address = dispatcher.target.split("://")[1]
    port = int(address.rsplit(":", 1)[1])
    worker = service.WorkerServer(
        service.WorkerConfig(
            dispatcher_address=f"127.0.0.1:{port}",
            worker_address="127.0.0.1:%port%",
        )
    )
    yield f"grpc://127.0.0.1:{port}"
    worker.stop()
    dispatcher.stop()


def test_service_batches_equal_local_ones(folder, service):  # noqa: F811
    kwargs = dict(batch_size=16, shuffle=False, augment=False)
    local, _ = load(str(folder), "test", **kwargs)
    remote, info = load(str(folder), "test", data_service=service, **kwargs)
    assert "decoded by tf.data service workers" in info.storage
    a, b = batches(local), batches(remote)
    assert len(a) == len(b) == 13
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)


def test_bad_address_is_one_line(folder):  # noqa: F811
    with pytest.raises(DataError, match="grpc://HOST:PORT"):
        load(str(folder), "test", data_service="127.0.0.1:5000")


def test_fit_with_a_data_service(folder, service, runner,  # noqa: F811
                                 tmp_path):  # fmt: skip
    from cli.main import cli

    result = runner.invoke(cli, [
        "fit", "simple_convnet", "--dataset", str(folder), "--epochs", "1",
        "--batch-size", "20", "--data-service", service, "--no-export",
        "--log-format", "json", "--run-dir", str(tmp_path / "run"),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["epoch"] == [1] and np.isfinite(history["loss"][0])
