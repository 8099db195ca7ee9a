"""Exporting the same run twice does not add an identical version, and a
new version that verifies below the one it supersedes is said to."""

import os

import numpy as np

from tests.helpers import export, save_run


def _versions(model_dir):
    return sorted(n for n in os.listdir(model_dir) if n.isdigit())


def test_identical_export_is_not_duplicated_and_a_worse_one_is_flagged(
    lenet_run, mnist_test, tmp_path
):
    from kerascnn.metadata import load_model_and_metadata

    first = export(lenet_run, base_dir=tmp_path, examples=mnist_test)
    assert first.written and first.version == 1 and first.note is None
    again = export(lenet_run, base_dir=tmp_path, examples=mnist_test)
    assert not again.written
    assert (again.version, again.path) == (1, first.path)
    assert "the same weights and metadata as version 1" in again.note
    assert _versions(tmp_path / "lenet") == ["1"]

    # The same architecture and meaning, with its last layer damaged.
    model, meta = load_model_and_metadata(lenet_run)
    kernel, bias = model.layers[-1].get_weights()
    rng = np.random.default_rng(0)
    model.layers[-1].set_weights([rng.normal(size=kernel.shape) * 0.5, bias])
    worse = save_run(model, meta, tmp_path / "runs" / "worse")
    second = export(worse, base_dir=tmp_path, examples=mnist_test)
    assert second.written and second.version == 2
    new = second.verification.artifact.accuracy
    old = first.verification.artifact.accuracy
    assert new < old
    assert second.note.startswith(
        f"version 2 scores {new:.4f} on {first.verified_on}, below version "
        f"1's {old:.4f}"
    )
    assert _versions(tmp_path / "lenet") == ["1", "2"]
    # Given a version number, an identical export is written anyway.
    forced = export(
        lenet_run, base_dir=tmp_path, examples=mnist_test, version=5
    )
    assert forced.written and forced.version == 5 and forced.note is None
