import json
import os
import subprocess
import sys
import textwrap

import pytest

from kerascnn import distribute
from kerascnn.distribute import get_strategy
from kerascnn.errors import InvalidArgumentError


def test_unknown_strategy_lists_choices():
    with pytest.raises(InvalidArgumentError, match="mirrored"):
        get_strategy("tpu_pod")


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(InvalidArgumentError, match="TF_CONFIG"):
        get_strategy("multi_worker")


def test_auto_is_single_device_on_cpu():
    assert get_strategy("auto").num_replicas_in_sync == 1


def test_global_batch_is_split_over_two_replicas(data_dir, tmp_path):
    """Two logical CPUs stand in for two GPUs: per-replica batch = 32."""
    code = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from kerascnn import train
        from kerascnn.config import recipe_for
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        config = recipe_for("lenet", data_dir={data_dir!r}, limit=640,
                            eval_limit=128, batch_size=64, epochs=1)
        train_ds, val_ds, info = train.load_data(config, strategy)
        x, y = next(iter(train_ds))
        shapes = [t.shape[0] for t in strategy.experimental_local_results(x)]
        assert shapes == [32, 32], shapes
        with strategy.scope():
            model = train.build_model(config, info)
            train.compile_model(model, config, info, 10)
        hist = model.fit(train_ds, epochs=1, verbose=0)
        print("OK", strategy.num_replicas_in_sync, hist.history["loss"][0])
    """)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK 2" in result.stdout


# ============================ TF_CONFIG ============================

_CLUSTER = {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]}


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("{not json", "it is not valid JSON"),
        ('["worker"]', 'it needs a "cluster" object'),
        ('{"cluster": {"worker": "h:1"}}', 'cluster "worker" must be a list'),
        ('{"cluster": {"worker": ["host"]}}', 'cluster "worker" must be'),
        ('{"cluster": {"worker": ["h:1"]}}', 'it needs a "task" object'),
        (
            '{"cluster": {"worker": ["h:1"]}, "task": {"type": "ps"}}',
            "task type must be",
        ),
        (
            '{"cluster": {"worker": ["h:1"]}, '
            '"task": {"type": "worker", "index": 1}}',
            "task index 1 is outside",
        ),
    ],
)
def test_malformed_tf_config_is_one_clear_error(monkeypatch, raw, reason):
    monkeypatch.setenv("TF_CONFIG", raw)
    with pytest.raises(InvalidArgumentError) as info:
        get_strategy("multi_worker")
    message = str(info.value)
    assert message.startswith(f"TF_CONFIG is malformed: {reason}")
    assert "\n" not in message


def test_tf_config_counts_workers_and_names_a_shared_run_dir(monkeypatch):
    from kerascnn.config import recipe_for

    config = {"cluster": {**_CLUSTER, "chief": ["h:1"]}}
    config["task"] = {"type": "worker", "index": 1}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    assert distribute.num_workers(distribute.read_tf_config()) == 3
    first = distribute.shared_run_dir(recipe_for("lenet"))
    assert first.startswith(os.path.join("runs", "lenet-cluster-"))
    # Every worker (another task index) gets the same folder.
    config["task"] = {"type": "chief", "index": 0}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    assert distribute.shared_run_dir(recipe_for("lenet")) == first


@pytest.mark.parametrize("raw", ["0", "-1", "soon"])
def test_peer_timeout_must_be_positive(monkeypatch, raw):
    monkeypatch.setenv(distribute.PEER_TIMEOUT_ENV, raw)
    with pytest.raises(InvalidArgumentError, match="KERASCNN_PEER_TIMEOUT"):
        distribute.peer_timeout()


def test_cli_malformed_tf_config_is_one_line(runner, monkeypatch, tmp_path):
    from cli.main import cli

    monkeypatch.setenv("TF_CONFIG", '{"cluster": ')
    result = runner.invoke(
        cli,
        ["fit", "lenet", "--strategy", "multi_worker", "--run-dir",
         str(tmp_path / "run")],
    )  # fmt: skip
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: TF_CONFIG is malformed: it is not")
    assert not (tmp_path / "run").exists()  # nothing written


def test_cli_mirrored_without_gpu_is_one_line(runner, tmp_path):
    from cli.main import cli

    result = runner.invoke(
        cli,
        ["fit", "lenet", "--strategy", "mirrored", "--run-dir",
         str(tmp_path / "run")],
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: strategy 'mirrored' mirrors the model over local GPUs and "
        "TensorFlow sees none; use --strategy default (one device) or "
        "multi_worker (several processes)."
    )
    assert not (tmp_path / "run").exists()


# ======================= Mirrored = one device =======================


def test_mirrored_two_cpus_matches_one_device(data_dir):
    """Same global batch of real MNIST: after 3 SGD steps the loss and the
    weights of the 2-replica run equal the single-device run's."""
    code = textwrap.dedent(f"""
        import json
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras
        import numpy as np
        from kerascnn import distribute, train, training_data
        from kerascnn.config import recipe_for

        # eval_limit: the split is read unshuffled (training=False), so
        # both runs see the same batches even though Keras iterates the
        # distributed dataset once more than the plain one.
        config = recipe_for("lenet", data_dir={data_dir!r}, limit=192,
                            eval_limit=192, batch_size=64, epochs=1,
                            augment=False, optimizer="sgd",
                            learning_rate=0.05, schedule="constant")

        def run(strategy):
            keras.utils.set_random_seed(0)
            train_ds, info = training_data.load_split(config, "train", False)
            if strategy.num_replicas_in_sync > 1:
                train_ds = training_data.distribute_split(
                    strategy, config, "train", False)
            with strategy.scope():
                model = train.build_model(config, info)
                train.compile_model(model, config, info, 3)
            hist = model.fit(train_ds, epochs=1, verbose=0)
            return hist.history["loss"][0], model.get_weights()

        mirrored = distribute.get_strategy("mirrored", ["/cpu:0", "/cpu:1"])
        assert mirrored.num_replicas_in_sync == 2
        loss2, w2 = run(mirrored)
        loss1, w1 = run(distribute.get_strategy("default"))
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(w1, w2))
        scale = max(float(np.max(np.abs(a))) for a in w1)
        print(json.dumps({{"loss1": loss1, "loss2": loss2, "diff": diff,
                          "scale": scale}}))
    """)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["loss1"] == pytest.approx(out["loss2"], rel=1e-4)
    assert out["diff"] < 1e-5 * max(1.0, out["scale"]), out


class _Resolver:
    def __init__(self, task_type, task_id):
        self.task_type, self.task_id = task_type, task_id

    def cluster_spec(self):
        class Spec:
            def as_dict(self):
                return {"worker": ["a:1", "b:1"]}

        return Spec()


class _Strategy:
    def __init__(self, task_type, task_id):
        self.cluster_resolver = _Resolver(task_type, task_id)


def test_worker_folder_of_a_non_chief_is_seeded_and_removed(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "backup").mkdir(parents=True)
    (run_dir / "backup" / "state.json").write_text('{"epoch": 2}')

    with pytest.raises(RuntimeError):
        with distribute.worker_folder(
            str(run_dir), _Strategy("worker", 1), "backup"
        ) as where:
            assert where != str(run_dir)
            seeded = os.path.join(where, "backup", "state.json")
            assert open(seeded).read() == '{"epoch": 2}'
            raise RuntimeError("training failed")

    assert not os.path.exists(where)  # removed even on failure
    assert (run_dir / "backup" / "state.json").is_file()  # chief's kept


def test_worker_folder_of_the_chief_is_the_run_dir(tmp_path):
    with distribute.worker_folder(
        str(tmp_path), _Strategy("worker", 0), "backup"
    ) as where:
        assert where == str(tmp_path)
    assert tmp_path.is_dir()
