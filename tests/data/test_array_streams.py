"""`.npz` files and TFDS splits larger than the memory budget stream
(memory-mapped by index, or in order) with the batches of the in-memory
path, value for value, and say so on the `Data:` line. Nothing
downloads: the TFDS data set is a tiny builder prepared in a tmp dir."""

import re

import numpy as np
import pytest

from kerascnn.data import load, progress, sources, storage
from tests.data.test_streaming import assert_same_batches, batches

N_TRAIN, N_TEST, SIDE = 60, 14, 12


def _arrays(dtype=np.uint8, channels=3):
    rng = np.random.default_rng(7)
    shape = (N_TRAIN + N_TEST, SIDE, SIDE) + ((channels,) if channels else ())
    x = rng.integers(0, 256, shape).astype(np.uint8)
    if dtype != np.uint8:
        x = (x / 255.0).astype(dtype)  # floats in [0, 1]
    y = rng.integers(0, 5, N_TRAIN + N_TEST)
    return dict(
        x_train=x[:N_TRAIN], y_train=y[:N_TRAIN],
        x_test=x[N_TRAIN:], y_test=y[N_TRAIN:],
    )  # fmt: skip


@pytest.fixture
def tiny_budget(monkeypatch):
    """A 1 KiB memory budget: every split is larger, so `auto` streams."""
    monkeypatch.setenv(storage.MEMORY_BUDGET_ENV, "1K")


@pytest.mark.parametrize(
    "save, dtype, channels, random_access",
    [
        (np.savez, np.uint8, 3, True),
        (np.savez, np.float32, None, True),  # (N, H, W) floats in [0, 1]
        (np.savez_compressed, np.uint8, 3, False),
    ],
)
def test_npz_over_the_budget_streams_the_in_memory_batches(
    tmp_path, tiny_budget, save, dtype, channels, random_access
):
    path = tmp_path / "set.npz"
    arrays = _arrays(dtype, channels)
    save(path, **arrays)
    raw = sources.read(str(path), "train")
    assert raw.images is None and raw.lazy.random_access is random_access
    x, y = raw.lazy.load()  # what the in-memory path holds
    expected = arrays["x_train"] if dtype == np.uint8 else np.rint(
        arrays["x_train"][..., None] * 255.0
    ).astype(np.uint8)  # fmt: skip
    np.testing.assert_array_equal(x, expected)
    np.testing.assert_array_equal(y, arrays["y_train"])
    # Shuffled batches match only where rows are read by index.
    for shuffle in (False, True) if random_access else (False,):
        kwargs = dict(batch_size=16, shuffle=shuffle, augment=shuffle, seed=3)
        memory, info_m = load(str(path), "train", cache="memory", **kwargs)
        stream, info_s = load(str(path), "train", **kwargs)
        assert info_m.storage.startswith(f"{N_TRAIN} images read into memory")
        how = "memory-mapped, each batch read by index" if random_access else (
            "read in order"
        )  # fmt: skip
        assert re.fullmatch(
            rf"{N_TRAIN} images streamed from {path} \(x_train\), {how} "
            r"\(~0 MiB decoded > 0 MiB memory budget, "
            r"\$KERASCNN_MEMORY_BUDGET\)",
            info_s.storage,
        ), info_s.storage
        assert_same_batches(batches(memory), batches(stream))
    # A held-out validation split and a limit narrow the stream too.
    kwargs = dict(batch_size=8, validation_size=10)
    memory, _ = load(str(path), "validation", cache="memory", **kwargs)
    stream, info = load(str(path), "validation", **kwargs)
    assert info.num_examples == 10 and "streamed" in info.storage
    assert_same_batches(batches(memory), batches(stream))
    stream, info = load(str(path), "train", limit=20, batch_size=8)
    assert sum(len(b[1]) for b in batches(stream)) == 20


def test_npz_unbatched_rows_and_bad_shapes(tmp_path, tiny_budget):
    path = tmp_path / "gray.npz"
    arrays = _arrays(np.uint8, None)  # (N, H, W): one channel added
    np.savez(path, **arrays)
    ds, info = load(str(path), "test", augment=False)
    assert info.input_shape == (SIDE, SIDE, 1) and "memory-mapped" in (
        info.storage
    )  # fmt: skip
    steps = []
    with progress.reporting(steps.append):
        memory, _ = load(str(path), "test", augment=False, cache="memory")
    assert str(steps[-1]).startswith(
        f"Reading {path} (x_test) into memory: {N_TEST}/{N_TEST} images ("
    )
    assert_same_batches(batches(memory), batches(ds))
    np.savez(path, **dict(arrays, x_train=np.zeros((3, 4, 4, 2), np.uint8)))
    with pytest.raises(Exception, match=r"C in \(1, 3, 4\)"):
        load(str(path), "train")


# ======================== TFDS ========================


@pytest.fixture(scope="module")
def tfds_images():
    """The images and labels of the tiny TFDS data set."""
    rng = np.random.default_rng(11)
    x = rng.integers(0, 256, (N_TRAIN + N_TEST, SIDE, SIDE, 3), np.uint8)
    return x, np.arange(N_TRAIN + N_TEST) % 3


@pytest.fixture
def tiny_tfds(tfds_images, tmp_path_factory, monkeypatch):
    """`tfds:kerascnn_tiny_images`, prepared locally (no download)."""
    import tensorflow_datasets as tfds

    images, labels = tfds_images
    name = "kerascnn_tiny_images"
    if name not in tfds.list_builders(with_community_datasets=False):

        class KerascnnTinyImages(tfds.core.GeneratorBasedBuilder):
            VERSION = tfds.core.Version("1.0.0")
            # No checksums or metadata files next to the code (finding
            # them needs `importlib_resources`, not installed).
            code_path = None

            def _info(self):
                return tfds.core.DatasetInfo(
                    builder=self,
                    features=tfds.features.FeaturesDict({
                        "image": tfds.features.Image(shape=(SIDE, SIDE, 3)),
                        "label": tfds.features.ClassLabel(
                            names=["a", "b", "c"]
                        ),
                    }),
                    supervised_keys=("image", "label"),
                )  # fmt: skip

            def _split_generators(self, dl_manager):
                del dl_manager
                return {
                    "train": self._generate_examples(0, N_TRAIN),
                    "test": self._generate_examples(N_TRAIN, N_TRAIN + N_TEST),
                }

            def _generate_examples(self, start, stop):
                for i in range(start, stop):
                    yield i, {"image": images[i], "label": int(labels[i])}

    data_dir = tmp_path_factory.mktemp("tfds")
    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(data_dir))
    monkeypatch.setattr(
        sources.tfds, "network_available", lambda *a, **k: False
    )
    tfds.builder(name, data_dir=str(data_dir)).download_and_prepare()
    return f"tfds:{name}"


def test_tfds_over_the_budget_streams_from_its_tfrecords(
    tiny_tfds, tfds_images, tiny_budget
):
    images, labels = tfds_images
    raw = sources.read(tiny_tfds, "train")
    x, y = raw.lazy.load()
    # TFDS stores the examples in its own (hashed) order.
    assert sorted(zip(map(bytes, x), y)) == sorted(
        zip(map(bytes, images[:N_TRAIN]), labels[:N_TRAIN])
    )
    for augment in (False, True):
        kwargs = dict(batch_size=16, shuffle=False, augment=augment, seed=5)
        memory, info_m = load(tiny_tfds, "train", cache="memory", **kwargs)
        stream, info_s = load(tiny_tfds, "train", **kwargs)
        assert info_m.storage.startswith(f"{N_TRAIN} images read into memory")
        assert info_s.storage.startswith(
            f"{N_TRAIN} images streamed from tfds:kerascnn_tiny_images "
            "train, read in order (~0 MiB decoded > 0 MiB memory budget"
        )
        assert_same_batches(batches(memory), batches(stream))
    # Held out of train: the tail of the split, read as a TFDS slice.
    memory, _ = load(tiny_tfds, "validation", cache="memory", batch_size=4,
                     validation_size=6)  # fmt: skip
    stream, _ = load(tiny_tfds, "validation", batch_size=4, validation_size=6)
    assert_same_batches(batches(memory), batches(stream))
    shuffled, _ = load(tiny_tfds, "train", batch_size=N_TRAIN, seed=1)
    ((_, y_shuffled),) = batches(shuffled)
    assert sorted(y_shuffled) == sorted(labels[:N_TRAIN])


def test_fit_says_it_streams_tfds(tiny_tfds, tiny_budget, runner, tmp_path):
    from cli.main import cli

    result = runner.invoke(cli, [
        "fit", "simple_convnet", "--dataset", tiny_tfds, "--epochs", "1",
        "--batch-size", "20", "--no-export", "--run-dir", str(tmp_path / "r"),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        f"Data: {N_TRAIN} images streamed from tfds:kerascnn_tiny_images "
        "train, read in order" in result.output
    )
    assert "test num_examples: 14" in result.output
