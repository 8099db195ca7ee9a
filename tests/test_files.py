"""`kerascnn.files`: a file is either the old one or the new one, never half."""

import json
import os

import pytest

from kerascnn import files


def test_write_json_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    files.write_json(path, {"accuracy": 0.5})
    files.write_json(path, {"accuracy": 0.99})

    assert json.loads(path.read_text()) == {"accuracy": 0.99}
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "model.tflite"
    files.write_bytes(path, b"old")

    with pytest.raises(KeyboardInterrupt):
        with files.atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half of the new")
            raise KeyboardInterrupt

    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.tflite"]


def test_temporary_keeps_the_extension_and_folder(tmp_path):
    path = tmp_path / "checkpoints" / "last.keras"
    with files.atomic_path(path) as tmp:
        assert tmp.endswith("last.keras")
        assert os.path.dirname(tmp) == str(path.parent)
        open(tmp, "w").close()
    assert path.exists()


def test_copy_file(tmp_path):
    (tmp_path / "a").write_bytes(b"abc")
    files.copy_file(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "b").read_bytes() == b"abc"
