"""Sources: real-data sizes, local formats, TFDS offline, bad inputs."""

import gzip
import os
import warnings

import numpy as np
import pytest

from kerascnn.data import load, sources
from kerascnn.errors import DataError, DataNotice

# ======================== fixtures ========================


def write_idx(path, array, magic=None, truncate=0):
    array = np.asarray(array, np.uint8)
    magic = magic if magic is not None else 0x800 + array.ndim
    header = magic.to_bytes(4, "big") + b"".join(
        d.to_bytes(4, "big") for d in array.shape
    )
    data = header + array.tobytes()
    data = data[: len(data) - truncate]
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(data)


def make_idx_dir(root, n_train=20, n_test=10, **bad):
    d = root / "mnist"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(
            d / f"{prefix}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (n, 28, 28)),
            **(bad if prefix == "train" else {}),
        )
        write_idx(d / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    return d


def write_png(path, value=0, size=(8, 8)):
    from PIL import Image

    Image.fromarray(np.full(size + (3,), value, np.uint8)).save(path)


def make_folder(root, layout=("train", "test"), classes=("cat", "dog"), n=3):
    for split in layout:
        for c in classes:
            d = root / split / c if split else root / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                write_png(d / f"{i}.png", value=10 * i)
    return root


# ======================== real data ========================


def test_mnist_idx_real_counts(data_dir):
    train = sources.read("mnist", "train", data_dir)
    test = sources.read("mnist", "test", data_dir)
    assert train.images.shape == (60000, 28, 28, 1)
    assert test.images.shape == (10000, 28, 28, 1)
    assert train.split_sizes == {"train": 60000, "test": 10000}
    counts = np.bincount(train.labels, minlength=10)
    assert counts[0] == 5923 and counts[1] == 6742
    assert set(np.unique(test.labels)) == set(range(10))
    assert "IDX files" in train.source and data_dir in train.source


def test_cifar10_folder_real_counts(data_dir):
    raw = sources.read("cifar10", "train", data_dir)
    assert len(raw.paths) == 50000
    assert raw.split_sizes == {"train": 50000, "test": 10000}
    assert raw.class_names == [
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    ]  # fmt: skip
    assert np.bincount(raw.labels).tolist() == [5000] * 10
    # Round-robin order: any prefix is class-balanced.
    assert raw.labels[:10].tolist() == list(range(10))


def test_resolve_source_and_list():
    assert "mnist" in sources.list_datasets()
    assert "atis" in sources.list_datasets()
    assert (
        sources.resolve_source("tfds:emnist:letters") == "tfds:emnist/letters"
    )


# ======================== local formats ========================


def test_idx_local_dir(tmp_path):
    make_idx_dir(tmp_path)
    ds, info = load("mnist", "test", data_dir=str(tmp_path))
    assert info.num_examples == 10 and info.split_sizes["train"] == 20
    x, y = next(iter(ds))
    assert x.shape == (28, 28, 1) and 0.0 <= float(x.numpy().min())
    assert float(x.numpy().max()) <= 1.0


def test_idx_env_var_and_validation_size(tmp_path, monkeypatch):
    make_idx_dir(tmp_path)
    monkeypatch.setenv(sources.ENV_DATA_DIR, str(tmp_path))
    _, info = load("mnist", "validation", validation_size=5)
    assert info.num_examples == 5
    assert info.split_sizes == {"train": 15, "validation": 5, "test": 10}
    with pytest.raises(DataError, match="validation_size=N"):
        load("mnist", "validation")


def test_idx_wrong_magic(tmp_path):
    make_idx_dir(tmp_path, magic=0x00000999)
    with pytest.raises(
        DataError, match="train-images-idx3-ubyte.gz has a wrong magic"
    ):
        load("mnist", data_dir=str(tmp_path))


def test_idx_truncated(tmp_path):
    make_idx_dir(tmp_path, truncate=100)
    with pytest.raises(
        DataError, match=r"train-images-idx3-ubyte.gz is truncated"
    ):
        load("mnist", data_dir=str(tmp_path))


def test_npz(tmp_path):
    path = tmp_path / "toy.npz"
    rng = np.random.default_rng(0)
    np.savez(
        path, x_train=rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8),
        y_train=np.arange(12) % 3, x_test=np.zeros((4, 8, 8, 3), np.uint8),
        y_test=np.arange(4) % 3,
    )  # fmt: skip
    ds, info = load(str(path), "train", batch_size=5, validation_size=2)
    assert info.split_sizes == {"train": 10, "test": 4, "validation": 2}
    assert info.num_classes == 3 and info.input_shape == (8, 8, 3)
    assert sum(int(y.shape[0]) for _, y in ds) == 10
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((2, 4, 4)))
    with pytest.raises(DataError, match="missing"):
        load(str(tmp_path / "bad.npz"))


def test_flat_folder_with_validation(tmp_path):
    make_folder(tmp_path, layout=(None,), n=5)
    _, train = load(str(tmp_path), "train", validation_size=4)
    _, val = load(str(tmp_path), "validation", validation_size=4)
    assert train.num_examples == 6 and val.num_examples == 4
    assert train.class_names == ["cat", "dog"]
    assert sources.read(str(tmp_path), "validation").split_sizes == {
        "train": 8, "validation": 2,
    }  # fmt: skip
    with pytest.raises(DataError, match="no 'test' split"):
        load(str(tmp_path), "test")


def test_split_folder(tmp_path):
    make_folder(tmp_path)
    ds, info = load(str(tmp_path), "test", batch_size=4)
    assert info.split_sizes == {"test": 6, "train": 6}
    assert info.input_shape == (8, 8, 3) and info.augmentation is None
    x, y = next(iter(ds))
    assert x.shape == (4, 8, 8, 3) and y.numpy().tolist() == [0, 1, 0, 1]


# ======================== bad image folders ========================


def test_empty_class_folder(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "train" / "empty").mkdir()
    with pytest.raises(
        DataError, match=r"Class folder .*train/empty has no image files"
    ):
        load(str(tmp_path))


def test_mismatched_class_sets(tmp_path):
    make_folder(tmp_path)
    make_folder(tmp_path, layout=("test",), classes=("bird",))
    with pytest.raises(DataError, match=r"extra: \['bird'\]"):
        load(str(tmp_path))


def test_non_image_file(tmp_path):
    make_folder(tmp_path)
    bad = tmp_path / "train" / "cat" / "notes.jpg"
    bad.write_text("not an image")
    with pytest.raises(
        DataError, match=f"Cannot read image file {bad}: it is empty or not"
    ):
        load(str(tmp_path))
    with pytest.warns(DataNotice, match=f"Skipped 1 bad example.*: {bad}\\.$"):
        _, info = load(str(tmp_path), skip_bad=True)
    assert info.num_examples == 6
    assert info.storage.endswith("; 1 bad file(s) skipped")


def test_corrupt_jpeg(tmp_path):
    make_folder(tmp_path)
    bad = tmp_path / "train" / "dog" / "9.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 50)  # header only
    with pytest.raises(DataError, match=f"Cannot decode image file {bad}"):
        load(str(tmp_path))
    with pytest.warns(DataNotice, match=f"could not be decoded: {bad}\\.$"):
        _, info = load(str(tmp_path), skip_bad=True)
    assert info.num_examples == 6


def test_unknown_name(tmp_path):
    with pytest.raises(DataError, match="Unknown data set 'nope'"):
        load("nope", data_dir=str(tmp_path))
    with pytest.raises(DataError, match="split"):
        load("mnist", "holdout")


# ======================== TFDS (offline) ========================


def test_tfds_offline_error_names_places(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setattr(
        sources.tfds, "network_available", lambda *a, **k: False
    )
    monkeypatch.setattr(
        tfds.core.DatasetBuilder, "is_prepared", lambda s: False
    )
    with pytest.raises(DataError) as e:
        load("kmnist", data_dir=str(tmp_path))
    msg = str(e.value)
    assert "no network" in msg and os.path.join(str(tmp_path), "kmnist") in msg
    assert "KERASCNN_DATA_DIR" in msg and "TFDS cache" in msg


def test_tfds_mock_data(monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(sources.tfds, "network_available", lambda *a, **k: True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with tfds.testing.mock_data(num_examples=9):
            ds, info = load("tfds:mnist", "train", batch_size=4, augment=False)
            batches = list(ds)
    assert info.source == "tfds:mnist" and info.num_examples == 9
    assert info.input_shape == (28, 28, 1) and info.num_classes == 10
    assert batches[0][0].shape == (4, 28, 28, 1)
    assert sum(int(y.shape[0]) for _, y in batches) == 9


def test_tfds_bad_name():
    with pytest.raises(DataError, match="tfds:<name>"):
        load("tfds:")


# ================== one hold-out rule, one resolver ==================


def test_plan_split_holds_out_the_last_training_examples():
    sizes = {"train": 10, "test": 4}
    val = sources.plan_split("x", sizes, "validation", 3)
    assert val.read == "train" and val.take(list(range(10))) == [7, 8, 9]
    assert val.sizes == {"train": 7, "validation": 3, "test": 4}
    train = sources.plan_split("x", sizes, "train", 0.3)
    assert train.take(list(range(10))) == list(range(7))
    test = sources.plan_split("x", sizes, "test", 3)
    assert test.read == "test" and test.take([1, 2]) == [1, 2]
    assert test.sizes == val.sizes  # every split reports the same sizes
    own = sources.plan_split(
        "x", {"train": 10, "validation": 2}, "validation", 5
    )
    assert own.read == "validation" and own.n_val == 0
    with pytest.raises(DataError, match="has no 'test' split; it has: train"):
        sources.plan_split("x", {"train": 10}, "test")


@pytest.mark.parametrize("validation_size", [0, 10, 1.0, "3", True])
def test_bad_validation_size_is_refused(validation_size):
    with pytest.raises(
        DataError, match=rf"Received: validation_size={validation_size!r}"
    ):
        sources.plan_split("x", {"train": 10}, "train", validation_size)


def test_every_format_asks_for_validation_size_the_same_way(tmp_path):
    make_idx_dir(tmp_path / "idx")
    folder = make_folder(tmp_path / "folder")
    npz = tmp_path / "toy.npz"
    np.savez(
        npz, x_train=np.zeros((4, 8, 8), np.uint8), y_train=np.arange(4),
        x_test=np.zeros((2, 8, 8), np.uint8), y_test=np.arange(2),
    )  # fmt: skip
    for name, data_dir in (
        ("mnist", str(tmp_path / "idx")),
        (str(folder), None),
        (str(npz), None),
    ):
        with pytest.raises(
            DataError,
            match=r"has no validation split; pass `validation_size=N`",
        ):
            sources.read(name, "validation", data_dir)


def test_read_and_resolve_source_agree_and_expand_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    make_folder(tmp_path / "pics")
    raw = sources.read("~/pics", "test")
    assert raw.source == sources.resolve_source("~/pics")
    assert raw.source == f"{tmp_path / 'pics'} (image folder)"
    make_idx_dir(tmp_path)
    raw = sources.read("mnist", "test", "~")
    assert raw.source == sources.resolve_source("mnist", "~")
    assert raw.source == f"{tmp_path / 'mnist'} (IDX files)"
    # An atis/ folder without both .iob files is not a local copy.
    (tmp_path / "atis").mkdir()
    assert sources.resolve_source("atis", "~").endswith("(ATIS, download)")
    with pytest.raises(DataError, match="Received: name=None"):
        sources.resolve_source(None)
