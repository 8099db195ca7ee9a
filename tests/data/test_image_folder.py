"""Image folders refuse early what cannot train: fewer than two classes,
a class without image files, a class whose files all fail to decode;
and they say once what they skipped."""

import os
import warnings

import pytest

from kerascnn.data import load
from kerascnn.data.pipeline import get_info
from kerascnn.errors import DataError, DataNotice
from tests.data import messy_images


def _folder(root, data_dir, classes, count=3):
    for name in classes:
        os.makedirs(root / name)
        for i, path in enumerate(
            messy_images.cifar_files(data_dir, name, count)
        ):
            with (
                open(path, "rb") as src,
                open(root / name / f"{i}.jpg", "wb") as f,
            ):
                f.write(src.read())
    return root


def test_one_class_is_refused(tmp_path, data_dir):
    _folder(tmp_path, data_dir, ["cat"])
    with pytest.raises(
        DataError,
        match=r"one class folder \(cat\); a classifier needs at least 2",
    ):
        load(str(tmp_path))


def test_a_class_with_only_stray_files_is_refused(tmp_path, data_dir):
    _folder(tmp_path, data_dir, ["cat", "dog"])
    (tmp_path / "frog").mkdir()
    (tmp_path / "frog" / "README.txt").write_text("todo")
    with pytest.raises(DataError, match=r"frog has no image files"):
        load(str(tmp_path))


def test_a_class_whose_files_all_fail_is_refused_even_with_skip_bad(
    tmp_path, data_dir
):
    _folder(tmp_path, data_dir, ["cat", "dog"], count=5)
    for name in os.listdir(tmp_path / "dog"):
        (tmp_path / "dog" / name).write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataNotice)
        with pytest.raises(
            DataError, match=r"No image of class dog .* could be decoded"
        ):
            load(str(tmp_path), skip_bad=True, image_size=(16, 16))


def test_strays_are_named_in_one_notice_and_sizes_vary(tmp_path, data_dir):
    messy_images.messy_folder(data_dir, str(tmp_path), empty_jpeg=False)
    with pytest.warns(DataNotice) as notes:
        info = get_info(str(tmp_path))
    lines = [str(n.message) for n in notes]
    assert len(lines) == 1
    assert lines[0].startswith(
        "Skipped 4 file(s) that are hidden or not images"
    )
    assert info.input_shape == (None, None, 3)
    assert info.storage.startswith("sizes vary (20x20 to 600x800")


def test_convert_skips_bad_files_and_keeps_the_folders_pixels(
    tmp_path, data_dir
):
    import numpy as np

    from kerascnn.data.convert import convert

    root = messy_images.messy_folder(data_dir, str(tmp_path / "photos"))
    empty = os.path.join(root, "cat", "empty.jpg")
    with pytest.raises(DataError, match=f"Cannot .* image file {empty}"):
        with pytest.warns(DataNotice, match="README.txt"):  # the strays
            convert(root, str(tmp_path / "refused"))
    assert not (tmp_path / "refused").exists()
    with pytest.warns(DataNotice) as notes:
        manifest = convert(root, str(tmp_path / "shards"), skip_bad=True)
    assert any(empty in str(n.message) for n in notes)
    assert manifest["channels"] == 3
    counts = {s: e["count"] for s, e in manifest["splits"].items()}
    assert sum(counts.values()) == 2 * len(messy_images.KINDS)

    def pixels(source, split):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataNotice)
            ds, _ = load(
                source, split, image_size=(24, 24), channels=3,
                shuffle=False, augment=False, skip_bad=True,
            )  # fmt: skip
        x = np.stack([x for x, _ in ds.as_numpy_iterator()])
        return x[np.lexsort(x.reshape(len(x), -1).T)]

    for split in counts:
        np.testing.assert_array_equal(
            pixels(str(tmp_path / "shards"), split), pixels(root, split)
        )
