"""`kerascnn.serving.scan_models`: what a server would find under a folder."""

import os

from kerascnn.serving import scan_models


def _version(model_dir, name, complete=True):
    path = os.path.join(model_dir, name)
    os.makedirs(path)
    if complete:
        open(os.path.join(path, "saved_model.pb"), "wb").close()


def test_scan_models_lists_loadable_versions_per_model(tmp_path):
    base = tmp_path / "models"
    _version(base / "lenet", "1")
    _version(base / "lenet", "3")
    _version(base / "lenet", "4", complete=False)  # still being written
    _version(base / "unfinished", "2", complete=False)
    _version(base / ".hidden", "1")
    (base / "notes.txt").write_text("not a model")

    found = scan_models(str(base))

    assert found == {"lenet": (str(base / "lenet"), [1, 3])}


def test_scan_models_accepts_one_models_folder(tmp_path):
    model_dir = tmp_path / "resnet20"
    _version(model_dir, "7")

    assert scan_models(str(model_dir)) == {"resnet20": (str(model_dir), [7])}
