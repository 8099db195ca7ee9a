"""Streamed image folders: same batches as in memory, the memory/stream
choice, the disk cache, bad files mid-stream, bounded memory."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from kerascnn.data import decode, load, storage, streaming
from kerascnn.errors import DataError

REPO = Path(__file__).resolve().parents[2]


def cifar_folder(data_dir, root, per_class, size, splits=("train", "test"),
                 fmt="JPEG"):  # fmt: skip
    """`root/<split>/<class>/*` of real CIFAR-10 test images, upscaled."""
    from PIL import Image

    src = Path(data_dir) / "cifar10" / "test"
    for s, split in enumerate(splits):
        for c in sorted(os.listdir(src)):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            names = sorted(os.listdir(src / c))[s * per_class :]
            for name in names[:per_class]:
                image = Image.open(src / c / name).convert("RGB")
                image = image.resize((size, size), Image.BILINEAR)
                stem = Path(name).stem
                ext = "png" if fmt == "PNG" else "jpg"
                image.save(root / split / c / f"{stem}.{ext}", fmt)
    return root


@pytest.fixture(scope="module")
def folder(data_dir, tmp_path_factory):
    """20 train + 20 test images per class, 48x48 JPEGs (400 images)."""
    return cifar_folder(data_dir, tmp_path_factory.mktemp("cifar48"), 20, 48)


def batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def assert_same_batches(a, b):
    assert len(a) == len(b) > 0
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(xa, xb)


@pytest.mark.parametrize("shuffle", [False, True])
def test_stream_equals_in_memory_value_for_value(folder, shuffle):
    kwargs = dict(batch_size=32, shuffle=shuffle, augment=shuffle, seed=3)
    memory, info_m = load(str(folder), "train", cache="memory", **kwargs)
    stream, info_s = load(str(folder), "train", cache="none", **kwargs)
    assert info_m.storage.startswith("200 images decoded into memory")
    assert info_s.storage.startswith("200 images streamed, read every epoch")
    assert (
        info_s.class_names
        == info_m.class_names
        == sorted(os.listdir(folder / "train"))
    )
    assert info_s.preprocessing == info_m.preprocessing
    assert info_s.augmentation == info_m.augmentation == (
        "flip" if shuffle else None
    )  # fmt: skip
    first = batches(memory)
    assert_same_batches(first, batches(stream))
    if not shuffle:  # class-interleaved order: labels 0..9, 0..9, ...
        assert first[0][1].tolist() == [i % 10 for i in range(32)]


def test_auto_choice_follows_the_memory_budget(folder, monkeypatch):
    _, info = load(str(folder), "train")
    assert info.storage.startswith("200 images decoded into memory")
    assert "fits the 2.0 GiB memory budget" in info.storage
    # 200 images x 48 x 48 x 3 = 1.3 MiB decoded.
    monkeypatch.setenv(storage.MEMORY_BUDGET_ENV, "2M")
    ds, info = load(str(folder), "test", batch_size=8)
    assert "decoded into memory" in info.storage
    monkeypatch.setenv(storage.MEMORY_BUDGET_ENV, "1M")
    ds, info = load(str(folder), "test", batch_size=8)
    assert info.storage == (
        "200 images streamed, read every epoch (~1 MiB decoded > 1 MiB "
        "memory budget, $KERASCNN_MEMORY_BUDGET)"
    )
    assert sum(len(y) for _, y in batches(ds)) == 200
    monkeypatch.setenv(storage.MEMORY_BUDGET_ENV, "lots")
    with pytest.raises(DataError, match="KERASCNN_MEMORY_BUDGET must be"):
        load(str(folder), "test")


def test_disk_cache_writes_once_and_reads_back_the_same(folder, tmp_path):
    kwargs = dict(batch_size=16, shuffle=False, augment=False)
    ref = batches(load(str(folder), "test", cache="memory", **kwargs)[0])
    ds, info = load(
        str(folder), "test", cache="disk", cache_dir=tmp_path, **kwargs
    )
    assert "cached on disk" in info.storage
    assert_same_batches(ref, batches(ds))  # first epoch writes the cache
    assert any(p.name.endswith(".index") for p in tmp_path.iterdir())
    assert_same_batches(ref, batches(ds))  # second epoch reads it
    with pytest.raises(DataError, match="cache='disk' needs a folder"):
        load(str(folder), "test", cache="disk")
    with pytest.raises(DataError, match="`cache` must be one of"):
        load(str(folder), "test", cache="ram")


@pytest.fixture
def bad_folder(folder, tmp_path):
    """The test split with a truncated JPEG and a text file among cats."""
    root = tmp_path / "bad"
    shutil.copytree(folder / "test", root / "test")
    shutil.copytree(folder / "test", root / "train")
    cat = root / "train" / "cat"
    good = sorted(cat.iterdir())[0].read_bytes()
    (cat / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (cat / "notes.jpg").write_text("not an image")
    return root


def test_bad_file_mid_stream_is_named_or_skipped_and_counted(bad_folder):
    ds, _ = load(str(bad_folder), "train", cache="none", batch_size=8,
                 shuffle=False)  # fmt: skip
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        batches(ds)
    error = decode.bad_file_error(caught.value)
    assert str(error).startswith(
        f"Cannot decode image file {bad_folder / 'train' / 'cat'}/"
    )
    assert "notes.jpg" in str(error) or "truncated.jpg" in str(error)
    streaming.SKIPPED.take()
    ds, info = load(str(bad_folder), "train", cache="none", batch_size=8,
                    skip_bad=True)  # fmt: skip
    assert sum(len(y) for _, y in batches(ds)) == 200 == info.num_examples - 2
    skipped = sorted(Path(p).name for p in streaming.SKIPPED.take())
    assert skipped == ["notes.jpg", "truncated.jpg"]


def test_fit_names_the_bad_file_or_skips_it(bad_folder, runner, tmp_path):
    from cli.main import cli

    args = [
        "fit", "simple_convnet", "--dataset", str(bad_folder), "--cache",
        "none", "--epochs", "1", "--batch-size", "16", "--no-export",
        "--log-format", "json", "--run-dir",
    ]  # fmt: skip
    result = runner.invoke(cli, args + [str(tmp_path / "run1")])
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: Cannot decode image file ")
    assert "Traceback" not in result.output
    result = runner.invoke(cli, args + [str(tmp_path / "run2"), "--skip-bad"])
    assert result.exit_code == 0, result.output
    assert "Epoch 1: skipped 2 bad image file(s)" in result.output
    history = json.loads((tmp_path / "run2" / "history.json").read_text())
    assert history["skipped_files"] == [2]


def test_run_stopped_by_a_bad_file_resumes_once_it_is_fixed(
    folder, runner, tmp_path, monkeypatch
):
    """Epoch 2 meets a file that broke after epoch 1: the error names it;
    with the file replaced, the same command resumes after epoch 1."""
    import keras

    from cli.main import cli
    from kerascnn import train

    root = tmp_path / "data"
    shutil.copytree(folder / "test", root / "test")
    shutil.copytree(folder / "test", root / "train")
    victim = sorted((root / "train" / "dog").iterdir())[3]
    good = victim.read_bytes()

    class BreakAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                victim.write_bytes(good[: len(good) // 2])

    make_callbacks = train.make_callbacks
    monkeypatch.setattr(
        train, "make_callbacks",
        lambda *a, **k: make_callbacks(*a, **k) + [BreakAfterFirstEpoch()],
    )  # fmt: skip
    run = tmp_path / "run"
    args = [
        "fit", "simple_convnet", "--dataset", str(root), "--cache", "none",
        "--epochs", "3", "--batch-size", "32", "--no-export", "--run-dir",
        str(run),
    ]  # fmt: skip
    result = runner.invoke(cli, args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: Cannot decode image file {victim}: it is not an image, it "
        "is truncated or it has more than 67,108,864 pixels. Remove it, or "
        "pass --skip-bad to skip and count such files. Training resumes "
        "from the last finished epoch."
    )
    assert (run / "history.csv").read_text().count("\n") == 2  # 1 epoch
    monkeypatch.setattr(train, "make_callbacks", make_callbacks)
    victim.write_bytes(good)
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"Resuming {run} after epoch 1" in result.output
    history = json.loads((run / "history.json").read_text())
    assert history["epoch"] == [1, 2, 3]


RSS_SCRIPT = textwrap.dedent("""
    import resource, sys
    import kerascnn
    from kerascnn.data import load
    ds, info = load(sys.argv[1], "train", batch_size=4, cache="none",
                    style="plain", augment=False)
    n = sum(len(y) for _, y in ds)
    print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
""")


def _peak_rss(root):
    out = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(root)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout.split()  # fmt: skip
    return int(out[0]), int(out[1])


def test_streaming_twice_the_images_does_not_double_memory(data_dir, tmp_path):
    per_class, size = 40, 256
    small = cifar_folder(data_dir, tmp_path / "small", per_class, size,
                         splits=("train",))  # fmt: skip
    large = cifar_folder(data_dir, tmp_path / "large", 2 * per_class, size,
                         splits=("train",))  # fmt: skip
    n_small, rss_small = _peak_rss(small)
    n_large, rss_large = _peak_rss(large)
    assert (n_small, n_large) == (400, 800)
    decoded_small = n_small * size * size * 3  # 79 MB: what memory would add
    assert rss_large - rss_small < decoded_small / 2, (rss_small, rss_large)
