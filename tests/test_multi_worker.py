"""Multi-worker training with real worker processes on 127.0.0.1.

Each test starts two `kerascnn fit ... --strategy multi_worker` processes
with their own `TF_CONFIG`, as a user would on two machines, bounds every
wait, and kills whatever it started when something fails.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# Runs the CLI and, after `fit`'s training loop, saves this worker's final
# weights outside every folder under test, so the test can compare them.
WORKER_SCRIPT = textwrap.dedent("""
    import os, sys
    import numpy as np
    from kerascnn import train

    _run_fit = train._run_fit

    def _run_fit_and_save_weights(model, *args, **kwargs):
        result = _run_fit(model, *args, **kwargs)
        np.savez(os.environ["TEST_WEIGHTS_OUT"], *model.get_weights())
        return result

    train._run_fit = _run_fit_and_save_weights
    from cli.main import main

    sys.argv = ["kerascnn", *sys.argv[1:]]
    main()
""")


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _tf_config(ports, index):
    return json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        }
    )


class Cluster:
    """Two worker processes of one `kerascnn fit` command."""

    def __init__(self, tmp_path, data_dir, fit_args, peer_timeout=60):
        self.tmp = tmp_path
        self.ports = _free_ports(2)
        self.fit_args = fit_args
        self.peer_timeout = peer_timeout
        self.data_dir = data_dir
        self.script = tmp_path / "worker.py"
        self.script.write_text(WORKER_SCRIPT)
        self.procs = {}

    def folder(self, kind, index):
        path = self.tmp / f"{kind}{index}"
        path.mkdir(exist_ok=True)
        return path

    def start(self, index):
        env = {
            **os.environ,
            "KERASCNN_DATA_DIR": self.data_dir,
            "KERASCNN_PEER_TIMEOUT": str(self.peer_timeout),
            "PYTHONPATH": str(REPO),
            "TF_CONFIG": _tf_config(self.ports, index),
            "TMPDIR": str(self.folder("tmp", index)),
            "TEST_WEIGHTS_OUT": str(self.tmp / f"weights{index}.npz"),
        }
        self.procs[index] = subprocess.Popen(
            [sys.executable, str(self.script), "fit", *self.fit_args],
            cwd=self.folder("cwd", index),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def start_all(self):
        for index in (0, 1):
            self.start(index)

    def wait(self, index, timeout):
        out, err = self.procs[index].communicate(timeout=timeout)
        return self.procs[index].returncode, out, err

    def kill_all(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


@pytest.fixture
def cluster_factory(tmp_path, data_dir):
    made = []

    def make(fit_args, **kwargs):
        made.append(Cluster(tmp_path, data_dir, fit_args, **kwargs))
        return made[-1]

    yield make
    for cluster in made:
        cluster.kill_all()


def _fit_args(tmp_path, epochs, limit, export):
    return [
        "lenet",
        "--strategy",
        "multi_worker",
        "--epochs",
        str(epochs),
        "--limit",
        str(limit),
        "--eval-limit",
        "128",
        "--batch-size",
        "64",
        "--run-dir",
        str(tmp_path / "shared" / "run"),
        "--export-dir",
        str(tmp_path / "shared" / "export"),
        "--export" if export else "--no-export",
        "--log-format",
        "json",
    ]


def _left_by_workers(cluster):
    """Files in the workers' working and temporary folders of kerascnn."""
    left = []
    for index in (0, 1):
        left += [str(p) for p in cluster.folder("cwd", index).iterdir()]
        left += [
            str(p)
            for p in cluster.folder("tmp", index).iterdir()
            if p.name.startswith("kerascnn")
        ]
    return left


def test_two_workers_train_lenet_and_only_the_chief_writes(
    tmp_path, cluster_factory
):
    cluster = cluster_factory(_fit_args(tmp_path, 1, 640, export=True))
    cluster.start_all()
    results = [cluster.wait(i, timeout=420) for i in (0, 1)]
    for code, _, err in results:
        assert code == 0, err[-3000:]

    w0 = np.load(tmp_path / "weights0.npz")
    w1 = np.load(tmp_path / "weights1.npz")
    assert len(w0.files) == len(w1.files) > 0
    for name in w0.files:
        np.testing.assert_array_equal(w0[name], w1[name])

    run = tmp_path / "shared" / "run"
    written = sorted(p.name for p in run.iterdir())
    assert written == [
        "checkpoints",
        "config.json",
        "curves.png",
        "history.csv",
        "history.json",
        "initial_filters.npz",
        "logs",
        "metadata.json",
        "metrics.json",
        "model.keras",
    ]
    assert json.loads((run / "history.json").read_text())["epoch"] == [1]
    exported = sorted(
        p.name for p in (tmp_path / "shared" / "export" / "lenet").iterdir()
    )
    # One export (and its model card), by the chief.
    assert exported == ["1", "MODEL_CARD.md", "model_card.json"]
    assert _left_by_workers(cluster) == []
    # The chief reports test metrics; the other worker only its run dir.
    chief_out = json.loads(results[0][1].strip().splitlines()[-1])
    assert chief_out["test"]["num_examples"] == 128
    other_out = json.loads(results[1][1].strip().splitlines()[-1])
    assert other_out["export"] is None and other_out["test"] == {}


def _wait_for_first_epoch(run, cluster, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for index, proc in cluster.procs.items():
            if proc.poll() is not None:
                raise AssertionError(
                    f"worker {index} ended early:\n{proc.stderr.read()[-3000:]}"
                )
        history, backup = run / "history.csv", run / "backup"
        if (
            history.is_file()
            and len(history.read_text().strip().splitlines()) >= 2
            and backup.is_dir()
            and any(backup.iterdir())
        ):
            return
        time.sleep(0.2)
    raise AssertionError("the first epoch did not finish in time")


def test_sigkilled_worker_restarted_with_same_command_finishes_the_run(
    tmp_path, cluster_factory
):
    run = tmp_path / "shared" / "run"
    cluster = cluster_factory(_fit_args(tmp_path, 3, 1536, export=False))
    cluster.start_all()
    _wait_for_first_epoch(run, cluster)
    cluster.procs[1].send_signal(signal.SIGKILL)
    cluster.procs[1].communicate()
    # The survivor notices within the heartbeat timeout (10 s) and stops
    # with one clear line instead of waiting for its peer forever.
    code, _, err = cluster.wait(0, timeout=120)
    assert code == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("Error: A worker of the multi-worker cluster")
    assert "Restart every worker with the same command" in last
    assert "Traceback" not in err
    done = len((run / "history.csv").read_text().strip().splitlines()) - 1
    assert 1 <= done < 3

    cluster.start_all()  # the same commands again
    results = [cluster.wait(i, timeout=420) for i in (0, 1)]
    for code, _, err in results:
        assert code == 0, err[-3000:]
        assert f"Resuming {run} after epoch {done}" in err
    history = json.loads((run / "history.json").read_text())
    assert history["epoch"] == [1, 2, 3]
    assert not (run / "backup").exists()  # deleted once training finished
    assert _left_by_workers(cluster) == []


def test_unreachable_peer_fails_after_the_timeout(tmp_path, cluster_factory):
    cluster = cluster_factory(
        _fit_args(tmp_path, 1, 64, export=False), peer_timeout=3
    )
    cluster.start(0)  # worker 1 never starts
    code, _, err = cluster.wait(0, timeout=240)
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last == (
        "Error: The multi-worker cluster did not form within 3 s "
        "(KERASCNN_PEER_TIMEOUT): check that every worker in TF_CONFIG was "
        "started and that its address is reachable."
    )
    assert "Traceback" not in err
    assert not (tmp_path / "shared").exists()
