"""`kerascnn.predict`: which files an input list names, and which
loader opens which artifact."""

import os

import pytest

from kerascnn.errors import KerasCNNError
from kerascnn.predict import expand_inputs, open_predictor


@pytest.fixture
def images(tmp_path):
    names = ("a.png", "b.JPG", "notes.txt", "sub/c.jpeg", "sub/deep/d.bmp")
    for path in names:
        os.makedirs(tmp_path / os.path.dirname(path), exist_ok=True)
        (tmp_path / path).write_bytes(b"x")
    return tmp_path


def test_a_folder_gives_its_images_in_order(images):
    found = expand_inputs([str(images)])
    assert found == [
        (str(images / "a.png"), None),
        (str(images / "b.JPG"), None),
    ]


def test_recursive_folders_and_globs(images):
    found = [path for path, _ in expand_inputs([str(images)], recursive=True)]
    assert [os.path.relpath(p, images) for p in found] == [
        "a.png", "b.JPG", "sub/c.jpeg", "sub/deep/d.bmp",
    ]  # fmt: skip
    pattern = str(images / "**" / "*.jp*g")
    globbed = [p for p, _ in expand_inputs([pattern], recursive=True)]
    assert [os.path.basename(p) for p in globbed] == ["c.jpeg"]


def test_inputs_that_name_nothing_keep_their_place(images):
    found = expand_inputs(
        [str(images / "sub" / "deep"), str(images / "z*.png"), "missing.png"]
    )
    assert found == [
        (str(images / "sub" / "deep" / "d.bmp"), None),
        (str(images / "z*.png"), "no file matches this pattern"),
        ("missing.png", None),  # read_image reports it on its line
    ]
    (images / "outer" / "inner").mkdir(parents=True)
    (images / "outer" / "inner" / "e.png").write_bytes(b"x")
    (empty,) = expand_inputs([str(images / "outer")])
    assert empty[1] == "no image files (--recursive looks in sub-folders)"


@pytest.mark.parametrize("name", ["model.onnx", "folder"])
def test_an_unknown_artifact_is_one_clear_error(tmp_path, name):
    path = tmp_path / name
    if name == "folder":
        path.mkdir()
    else:
        path.write_bytes(b"x")
    with pytest.raises(KerasCNNError, match="not a model kerascnn can predict"):
        open_predictor(str(path))
