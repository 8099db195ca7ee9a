"""Shards across input pipelines and workers: FILE sharding (each worker
opens only its shards), DATA fallback with a note, and a two-process
multi-worker `fit` in which every example is read exactly once."""

import json
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from kerascnn.data import streaming
from kerascnn.data.convert import convert
from kerascnn.data.sources import read
from tests.data.test_streaming import cifar_folder


@pytest.fixture(scope="module")
def shards(data_dir, tmp_path_factory):
    """100 train / 100 test real CIFAR-10 images as 4 + 4 PNG shards."""
    root = tmp_path_factory.mktemp("shard_src")
    folder = cifar_folder(data_dir, root / "folder", 10, 32, fmt="PNG")
    convert(str(folder), str(root / "shards"), shards=4)
    return root / "shards"


def _names(raw, input_context):
    spec = streaming.StreamSpec(None, None, raw.files, 100, (32, 32, 3))
    ds = streaming._record_elements(spec, True, 0, input_context)
    return [name.decode() for _, _, name in ds.as_numpy_iterator()]


def _context(i, n=2):
    return tf.distribute.InputContext(
        num_input_pipelines=n, input_pipeline_id=i, num_replicas_in_sync=n
    )


def test_each_pipeline_opens_only_its_shards_and_reads_each_once(shards):
    raw = read(str(shards), "train")
    files = [streaming.worker_files(raw.files, _context(i))
             for i in (0, 1)]  # fmt: skip
    assert files[0] == ([raw.files[0], raw.files[2]], False)
    assert files[1] == ([raw.files[1], raw.files[3]], False)
    seen = [_names(raw, _context(i)) for i in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 50
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == sorted(_names(raw, None))


def test_raw_shards_shard_by_file_too(shards, tmp_path):
    # Raw-pixel shards of the same images: each pipeline opens its own
    # shards and every record is read once, as pixels.
    folder = shards.parent / "folder"
    convert(str(folder), str(tmp_path / "raw"), shards=4, encoding="raw")
    raw = read(str(tmp_path / "raw"), "train")
    spec = streaming.StreamSpec(None, None, raw.files, 100,
                                (32, 32, 3), encoding="raw",
                                raw_channels=3)  # fmt: skip
    seen = []
    for i in (0, 1):
        ds = streaming._record_elements(spec, True, 0, _context(i))
        elements = list(ds.as_numpy_iterator())
        assert {x.shape for x, _, _ in elements} == {(32, 32, 3)}
        seen.append([name.decode() for _, _, name in elements])
    assert len(seen[0]) == len(seen[1]) == 50
    assert sorted(seen[0] + seen[1]) == sorted(
        _names(read(str(shards), "train"), None)
    )


def test_fewer_shards_than_pipelines_falls_back_to_data(shards, capsys):
    raw = read(str(shards), "train")
    one = raw.files[:1]  # 25 records, 1 shard, 3 pipelines
    raw.files = one
    assert streaming.worker_files(one, _context(0, 3)) == (one, True)
    note = capsys.readouterr().err.strip()
    assert note == (
        "Note: 1 shard(s) for 3 input pipelines: every worker reads all "
        "shards and keeps 1/3 of the records (DATA sharding); convert with "
        "--shards >= the number of workers."
    )
    seen = [_names(raw, _context(i, 3)) for i in range(3)]
    assert sorted(sum(seen, [])) == sorted(_names(raw, None))
    assert [len(s) for s in seen] == [9, 8, 8]


def test_dataset_options_carry_the_file_policy(shards):
    from kerascnn.data import load

    ds, _ = load(str(shards), "train", batch_size=10, cache="none")
    policy = ds.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.FILE


# Records which training records this worker read (through a py_function
# on the parsed records), then runs the CLI.
NAME_LOG_SCRIPT = textwrap.dedent("""
    import atexit, json, os, sys
    import tensorflow as tf
    from kerascnn.data import streaming

    seen = []
    _record_elements = streaming._record_elements

    def _logged(name):
        seen.append(name.numpy().decode())
        return name

    def record_elements(spec, shuffle, seed, input_context):
        ds = _record_elements(spec, shuffle, seed, input_context)
        return ds.map(lambda d, y, n: (
            d, y, tf.reshape(tf.py_function(_logged, [n], tf.string), [])))

    streaming._record_elements = record_elements
    atexit.register(lambda: json.dump(
        seen, open(os.environ["TEST_NAMES_OUT"], "w")))
    from cli.main import main

    sys.argv = ["kerascnn", *sys.argv[1:]]
    main()
""")


def test_two_workers_read_every_training_example_once(
    shards, tmp_path, data_dir, monkeypatch
):
    from tests.test_multi_worker import Cluster

    args = [
        "simple_convnet", "--dataset", str(shards), "--strategy",
        "multi_worker", "--epochs", "1", "--batch-size", "20", "--cache",
        "none", "--eval-limit", "20", "--no-export", "--log-format", "json",
        "--run-dir", str(tmp_path / "shared" / "run"),
    ]  # fmt: skip
    cluster = Cluster(tmp_path, data_dir, args)
    cluster.script.write_text(NAME_LOG_SCRIPT)
    names = [tmp_path / f"names{i}.json" for i in (0, 1)]
    try:
        for i in (0, 1):
            monkeypatch.setenv("TEST_NAMES_OUT", str(names[i]))
            cluster.start(i)
        results = [cluster.wait(i, timeout=420) for i in (0, 1)]
    finally:
        cluster.kill_all()
    for code, _, err in results:
        assert code == 0, err[-3000:]
    seen = [
        [n for n in json.loads(p.read_text()) if "/train/" in n] for p in names
    ]
    from collections import Counter

    # Each worker's 50 examples, disjoint, all 100 between them...
    assert len(set(seen[0])) == len(set(seen[1])) == 50
    assert not set(seen[0]) & set(seen[1])
    # ... and each exactly once: building the model reads no batch
    # (`distribute.prepare_model` takes the shapes from the element spec).
    counts = set(Counter(seen[0]).values()) | set(Counter(seen[1]).values())
    assert counts == {1}
    history = json.loads(
        (tmp_path / "shared" / "run" / "history.json").read_text()
    )
    assert history["epoch"] == [1] and np.isfinite(history["loss"][0])
