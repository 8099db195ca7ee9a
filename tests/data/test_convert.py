"""`data convert`: TFRecord shards round-trip counts, labels and pixels;
an interrupted convert leaves nothing that loads; shards as a data set."""

import hashlib
import json

import numpy as np
import pytest

from kerascnn.data import load
from kerascnn.data.convert import convert
from kerascnn.errors import DataError
from tests.data.test_streaming import batches, cifar_folder


@pytest.fixture(scope="module")
def png_folder(data_dir, tmp_path_factory):
    """10 train + 10 test real CIFAR-10 images per class, 40x40 PNGs."""
    root = tmp_path_factory.mktemp("png40")
    return cifar_folder(data_dir, root, 10, 40, fmt="PNG")


def assert_same_data(a, b):
    xa = np.concatenate([x for x, _ in a])
    xb = np.concatenate([x for x, _ in b])
    np.testing.assert_array_equal(
        np.concatenate([y for _, y in a]), np.concatenate([y for _, y in b])
    )
    return xa, xb


def test_png_round_trip_is_exact_and_the_manifest_adds_up(png_folder, tmp_path):
    out = tmp_path / "shards"
    manifest = convert(str(png_folder), str(out), shards=4)
    train = manifest["splits"]["train"]
    assert train["count"] == 100 and len(train["shards"]) == 4
    assert sum(s["count"] for s in train["shards"]) == 100
    assert set(train["class_counts"].values()) == {10}
    assert manifest["class_names"][:2] == ["airplane", "automobile"]
    for shard in train["shards"]:
        data = (out / shard["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == shard["sha256"]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    kwargs = dict(batch_size=16, shuffle=False, augment=False)
    for split in ("train", "test"):
        ref, ref_info = load(str(png_folder), split, **kwargs)
        for cache in ("memory", "none"):
            got, info = load(str(out), split, cache=cache, **kwargs)
            assert info.class_names == ref_info.class_names
            assert info.source == f"{out} (TFRecord shards)"
            xa, xb = assert_same_data(batches(ref), batches(got))
            np.testing.assert_array_equal(xa, xb)  # PNG: exact


def test_resize_keeps_png_exact_and_jpeg_close(png_folder, data_dir,
                                               tmp_path):  # fmt: skip
    out = tmp_path / "small"
    convert(str(png_folder), str(out), image_size=(16, 16))
    kwargs = dict(batch_size=50, shuffle=False, augment=False)
    ref = batches(load(str(png_folder), "test", image_size=(16, 16),
                       **kwargs)[0])  # fmt: skip
    got, info = load(str(out), "test", **kwargs)
    assert info.input_shape == (16, 16, 3)
    xa, xb = assert_same_data(ref, batches(got))
    np.testing.assert_array_equal(xa, xb)
    jpegs = cifar_folder(data_dir, tmp_path / "jpg", 5, 40)
    convert(str(jpegs), str(tmp_path / "q90"), image_size=(24, 24),
            quality=90)  # fmt: skip
    ref = batches(load(str(jpegs), "test", image_size=(24, 24), **kwargs)[0])
    got = batches(load(str(tmp_path / "q90"), "test", **kwargs)[0])
    xa, xb = assert_same_data(ref, got)
    assert np.abs(xa - xb).mean() < 4 / 255  # within JPEG quality 90


def test_arrays_are_stored_as_lossless_png(tmp_path):
    rng = np.random.default_rng(0)
    npz = tmp_path / "tiny.npz"
    np.savez(
        npz, x_train=rng.integers(0, 256, (30, 12, 12, 1), dtype=np.uint8),
        y_train=np.arange(30) % 3,
        x_test=rng.integers(0, 256, (9, 12, 12, 1), dtype=np.uint8),
        y_test=np.arange(9) % 3,
    )  # fmt: skip
    manifest = convert(str(npz), str(tmp_path / "out"))
    assert manifest["image_size"] == [12, 12] and manifest["channels"] == 1
    kwargs = dict(batch_size=10, shuffle=False, augment=False)
    for split in ("train", "test"):
        xa, xb = assert_same_data(
            batches(load(str(npz), split, **kwargs)[0]),
            batches(load(str(tmp_path / "out"), split, **kwargs)[0]),
        )
        np.testing.assert_array_equal(xa, xb)


def test_interrupted_convert_leaves_nothing_that_loads(png_folder, tmp_path):
    out = tmp_path / "shards"

    def interrupt_after_half(total):
        done = []

        def step(n):
            done.append(n)
            if len(done) == total // 2:
                raise KeyboardInterrupt

        return step

    with pytest.raises(KeyboardInterrupt):
        convert(str(png_folder), str(out), progress=interrupt_after_half)
    assert list(tmp_path.iterdir()) == []  # neither OUT_DIR nor a partial
    with pytest.raises(DataError, match="Unknown data set"):
        load(str(out), "train")
    # A partial folder left by a killed convert has no manifest: it is not
    # a shard set (here: not even an image folder).
    (tmp_path / "shards.partial-1" / "train").mkdir(parents=True)
    with pytest.raises(DataError, match="no class sub-folders"):
        load(str(tmp_path / "shards.partial-1"), "train")


def test_convert_refuses_existing_output_and_text(png_folder, tmp_path):
    with pytest.raises(DataError, match="already exists"):
        convert(str(png_folder), str(tmp_path))
    with pytest.raises(DataError, match="quality"):
        convert(str(png_folder), str(tmp_path / "q"), quality=0)


def test_cli_convert_then_fit_on_the_shards(png_folder, runner, tmp_path):
    from cli.main import cli

    out = tmp_path / "shards"
    result = runner.invoke(
        cli, ["data", "convert", str(png_folder), str(out), "--shards", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "train: 100 images in 2 shard(s)" in result.output
    result = runner.invoke(cli, [
        "fit", "simple_convnet", "--dataset", str(out), "--epochs", "1",
        "--batch-size", "20", "--no-export", "--run-dir",
        str(tmp_path / "run"), "--log-format", "json", "--cache", "none",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Data: 100 images streamed, read every epoch" in result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["num_examples"] == 100
