"""The tf.data service tests, run in a network namespace of their own.

TensorFlow's dispatcher and worker listen on every interface; inside
`unshare --net` the only interface is loopback, so nothing outside this
machine can reach them (tests/data/test_data_service.py holds the tests).
"""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def _can_unshare():
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(
    not _can_unshare(),
    reason="needs `unshare --net` (root or user namespaces) to keep the "
    "tf.data service servers off every interface but loopback",
)
def test_data_service_in_a_loopback_only_network():
    proc = subprocess.run(
        [
            "unshare",
            "--net",
            sys.executable,
            "-m",
            "tests.data.netns_pytest",
            "tests/data/test_data_service.py",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout
