import subprocess
import sys
import textwrap

import pytest

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
