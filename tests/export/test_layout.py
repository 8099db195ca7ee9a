"""`kerascnn.export.layout`: version folders named as TF Serving names them."""

from kerascnn.export import layout


def _version(model_dir, name):
    folder = model_dir / name
    folder.mkdir(parents=True)
    (folder / layout.SAVED_MODEL_FILE).write_bytes(b"")
    return folder


def test_zero_padded_version_is_found_by_its_real_name(tmp_path):
    padded = _version(tmp_path, "00000123")
    _version(tmp_path, "7")

    assert layout.list_versions(tmp_path) == [7, 123]
    assert layout.version_path(tmp_path, 123) == str(padded)
    assert layout.version_path(tmp_path, 7) == str(tmp_path / "7")


def test_a_new_version_is_named_by_its_number(tmp_path):
    assert layout.version_path(tmp_path, 4) == str(tmp_path / "4")


def test_inspect_reads_the_newest_zero_padded_version(tmp_path):
    from kerascnn.export.inspect import inspect_artifact
    from tests.serving.half_plus_two import write_half_plus_two

    write_half_plus_two(tmp_path / "half_plus_two", "00000123")

    info = inspect_artifact(str(tmp_path / "half_plus_two"))
    assert info["path"].endswith("00000123")
