"""`data convert`: TFRecord shards round-trip counts, labels and pixels;
an interrupted convert leaves nothing that loads; shards as a data set."""

import hashlib
import json

import numpy as np
import pytest

from kerascnn.data import get_info, load
from kerascnn.data.convert import convert
from kerascnn.data.decode import decode_image_bytes
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


# ======================== --encoding ========================


@pytest.fixture(scope="module")
def jpeg_folder(data_dir, tmp_path_factory):
    """5 train + 5 test real CIFAR-10 images per class, 40x40 JPEGs."""
    root = tmp_path_factory.mktemp("jpg40")
    return cifar_folder(data_dir, root, 5, 40)


def _records(out, split):
    """`(pixels, label, name)` of a raw shard split, parsed with numpy
    from the `tf.train.Example`s (independent of the reader)."""
    import tensorflow as tf

    manifest = json.loads((out / "manifest.json").read_text())
    got = []
    for shard in manifest["splits"][split]["shards"]:
        for record in tf.data.TFRecordDataset(str(out / shard["file"])):
            f = tf.train.Example.FromString(record.numpy()).features.feature
            shape = [f[f"image/{k}"].int64_list.value[0]
                     for k in ("height", "width", "channels")]  # fmt: skip
            pixels = np.frombuffer(f["image/pixels"].bytes_list.value[0],
                                   np.uint8).reshape(shape)  # fmt: skip
            label = f["image/class/label"].int64_list.value[0]
            name = f["image/filename"].bytes_list.value[0].decode()
            got.append((pixels, label, name))
    return got


@pytest.mark.parametrize("source", ["png_folder", "jpeg_folder"])
def test_raw_round_trip_holds_the_decoded_pixels_exactly(source, request,
                                                         tmp_path):  # fmt: skip
    import tensorflow as tf

    folder = request.getfixturevalue(source)
    out = tmp_path / "raw"
    manifest = convert(str(folder), str(out), shards=3, encoding="raw")
    assert manifest["encoding"] == "raw" and manifest["channels"] == 3
    assert get_info(str(out)).input_shape == (40, 40, 3)  # first record
    for split in ("train", "test"):
        records = _records(out, split)
        n = manifest["splits"][split]["count"]
        assert len(records) == n == len(list(folder.glob(f"{split}/*/*")))
        for pixels, label, name in records:
            # Exactly the source file's pixels as every command reads it
            # (JPEG: the accurate DCT), under its class.
            decoded = decode_image_bytes(tf.io.read_file(name)).numpy()
            np.testing.assert_array_equal(pixels, decoded)
            assert manifest["class_names"][label] == name.split("/")[-2]
        # Loaded: the folder's own first batches, value for value.
        kwargs = dict(batch_size=16, shuffle=False, augment=False)
        ref = batches(load(str(folder), split, **kwargs)[0])
        for cache in ("memory", "none"):
            got, info = load(str(out), split, cache=cache, skip_bad=True,
                             **kwargs)  # fmt: skip
            assert info.input_shape == (40, 40, 3)
            xa, xb = assert_same_data(ref, batches(got))
            np.testing.assert_array_equal(xa, xb)


def test_raw_imagenet_crops_equal_png_crops(png_folder, tmp_path):
    # The same windows for the same seeds: training crops and evaluation
    # centre crops of raw shards equal those of PNG shards (the PNG path
    # decodes whole, then crops), at 64 px, over three seeds.
    png, raw = tmp_path / "png", tmp_path / "raw"
    convert(str(png_folder), str(png), shards=2)
    convert(str(png_folder), str(raw), shards=2, encoding="raw")
    for augment in (True, False):
        for seed in (0, 1, 2):
            kwargs = dict(batch_size=25, augment=augment, seed=seed,
                          image_size=(64, 64), style="imagenet")  # fmt: skip
            a, info = load(str(png), "train", **kwargs)
            b, _ = load(str(raw), "train", **kwargs)
            xa, xb = assert_same_data(batches(a), batches(b))
            np.testing.assert_array_equal(xa, xb)
    assert info.augmentation == (
        "random_resized_crop_flip" if augment else None
    )


def test_raw_random_crop_samples_the_jpeg_windows():
    # JPEG bytes are cropped by decode_and_crop_jpeg, raw pixels from the
    # array: for each seed the window (hence the crop) is the same, so
    # the crop distribution is; pixels equal up to JPEG's crop decoding.
    import tensorflow as tf

    from kerascnn.data import augment as aug

    rng = np.random.default_rng(0)
    smooth = np.cumsum(rng.integers(0, 3, (96, 128, 3)), axis=1) % 256
    image = tf.constant(smooth.astype(np.uint8))
    data = tf.io.encode_jpeg(image, quality=95)
    decoded = tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")
    for s in range(20):
        seed = tf.constant([s, 7], tf.int64)
        a = aug.decode_random_resized_crop(data, [32, 32], 3, seed).numpy()
        b = aug.pixels_random_resized_crop(decoded, [32, 32], seed).numpy()
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 2
    png = tf.io.encode_png(image)
    for s in range(20):
        seed = tf.constant([s, 3], tf.int64)
        np.testing.assert_array_equal(
            aug.decode_random_resized_crop(png, [32, 32], 3, seed),
            aug.pixels_random_resized_crop(image, [32, 32], seed),
        )


def test_png_and_jpeg_encodings_reencode_every_image(jpeg_folder, tmp_path):
    import tensorflow as tf

    kwargs = dict(batch_size=50, shuffle=False, augment=False)
    ref = batches(load(str(jpeg_folder), "test", **kwargs)[0])
    manifest = convert(str(jpeg_folder), str(tmp_path / "png"),
                       encoding="png")  # fmt: skip
    assert manifest["encoding"] == "png"
    got = batches(load(str(tmp_path / "png"), "test", **kwargs)[0])
    xa, xb = assert_same_data(ref, got)
    np.testing.assert_array_equal(xa, xb)  # the JPEGs' pixels, lossless
    first = next(iter(tf.data.TFRecordDataset(
        manifest_files(tmp_path / "png", manifest)
    ))).numpy()  # fmt: skip
    assert b"\x89PNG" in first
    manifest = convert(str(jpeg_folder), str(tmp_path / "q80"),
                       encoding="jpeg", quality=80)  # fmt: skip
    assert manifest["encoding"] == "jpeg (quality 80)"
    got = batches(load(str(tmp_path / "q80"), "test", **kwargs)[0])
    xa, xb = assert_same_data(ref, got)
    assert 0 < np.abs(xa - xb).mean() < 6 / 255  # re-encoded at 80


def manifest_files(out, manifest, split="test"):
    return [str(out / s["file"]) for s in manifest["splits"][split]["shards"]]


def test_arrays_as_raw_pixels(tmp_path):
    rng = np.random.default_rng(1)
    npz = tmp_path / "tiny.npz"
    x = rng.integers(0, 256, (20, 12, 10, 1), dtype=np.uint8)
    np.savez(npz, x_train=x, y_train=np.arange(20) % 4,
             x_test=x[:8], y_test=np.arange(8) % 4)  # fmt: skip
    manifest = convert(str(npz), str(tmp_path / "out"), encoding="raw")
    assert manifest["image_size"] == [12, 10] and manifest["channels"] == 1
    records = _records(tmp_path / "out", "train")
    np.testing.assert_array_equal(np.stack([r[0] for r in records]), x)
    assert [r[1] for r in records] == list(np.arange(20) % 4)
    got, info = load(str(tmp_path / "out"), "train", batch_size=20,
                     shuffle=False, augment=False)  # fmt: skip
    assert info.input_shape == (12, 10, 1)
    ref = batches(load(str(npz), "train", batch_size=20, shuffle=False,
                       augment=False)[0])  # fmt: skip
    xa, xb = assert_same_data(ref, batches(got))
    np.testing.assert_array_equal(xa, xb)


def test_cli_raw_prints_its_size_and_fits(png_folder, runner, tmp_path):
    from cli.main import cli

    out = tmp_path / "raw"
    result = runner.invoke(cli, ["data", "convert", str(png_folder),
                                 str(out), "--encoding", "raw"])  # fmt: skip
    assert result.exit_code == 0, result.output
    # 200 images of 40 x 40 x 3 bytes = 960,000 bytes.
    assert "Raw pixels take ~0.9 MiB (H x W x C bytes per image" in (
        result.output
    )
    total = sum(p.stat().st_size for p in out.glob("*/*.tfrecord"))
    assert 960_000 < total < 1_100_000  # pixels + small framing
    assert f"Wrote {out}, {total / 2**20:,.1f} MiB (raw; " in result.output
    result = runner.invoke(cli, [
        "fit", "simple_convnet", "--dataset", str(out), "--epochs", "1",
        "--batch-size", "50", "--no-export", "--run-dir",
        str(tmp_path / "run"), "--log-format", "json", "--cache", "none",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Data: 100 images streamed, read every epoch" in result.output


def test_cli_bad_encoding_is_one_line(png_folder, runner, tmp_path):
    from cli.main import cli

    out = tmp_path / "x"
    result = runner.invoke(cli, ["data", "convert", str(png_folder),
                                 str(out), "--encoding", "webp"])  # fmt: skip
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [
        "Error: --encoding must be one of original, jpeg, png, raw (got 'webp')"
    ]
    assert not out.exists() and not list(tmp_path.glob("x.partial*"))
