"""Which data verified an export: real test examples, recorded and shown.

Without `examples=`, an export reads the data set's test split; the result
says so (`verified_on`). When the split cannot be read the export fails,
unless synthetic inputs are allowed, and then it says "synthetic inputs".
int8 calibrates on the training split, never on random pixels.
"""

import hashlib
import json
import os
import shutil

import numpy as np
import pytest

from kerascnn.errors import ExportError
from kerascnn.export import tflite as tfl
from kerascnn.export import verify
from kerascnn.export.examples import SyntheticVerificationWarning
from tests.helpers import export


def spy(monkeypatch, module, name):
    """Records the arguments of every call of `module.name`."""
    calls = []
    real = getattr(module, name)

    def record(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, record)
    return calls


def test_image_export_is_verified_on_real_mnist_test_digits(
    lenet_run, mnist, tmp_path, monkeypatch
):
    import keras

    compared = spy(monkeypatch, verify, "compare")
    result = export(lenet_run, base_dir=tmp_path, verify_examples=60)

    assert result.examples == "test"
    assert result.verified_on == "mnist test split (60 examples)"
    report = result.verification
    assert report.verified_on == result.verified_on
    assert report.to_dict()["verified_on"] == result.verified_on
    assert report.table().endswith(
        "(verified on mnist test split (60 examples))"
    )
    # The compared inputs and labels are the first 60 real test digits.
    ((args, _),) = compared
    x, y = args[2], args[3]
    test_x, test_y = mnist["test"]
    np.testing.assert_allclose(x, test_x[:60] / 255.0, atol=1e-6)
    np.testing.assert_array_equal(y, test_y[:60])
    model = keras.saving.load_model(os.path.join(lenet_run, "model.keras"))
    probs = model.predict(test_x[:60] / 255.0, verbose=0)
    assert report.keras.accuracy == np.mean(probs.argmax(-1) == test_y[:60])


def test_tagger_export_is_verified_on_real_atis_test_sentences(
    atis_run, tmp_path, monkeypatch
):
    compared = spy(monkeypatch, verify, "compare")
    result = export(atis_run["run"], base_dir=tmp_path, verify_examples=40)

    assert result.examples == "test"
    assert result.verified_on == "atis test split (40 sentences)"
    report = result.verification
    assert report.num_examples == 40
    assert report.keras.slot_f1 is not None
    assert report.artifact.slot_f1 == report.keras.slot_f1
    # The token ids are the first 40 test sentences under the model's
    # vocabulary, the gold tags the strings of the file.
    ((args, _),) = compared
    x, gold = args[2], args[3]
    expected_x, _ = atis_run["test"]
    for row, (words, tags, _) in enumerate(atis_run["sentences"][:40]):
        np.testing.assert_array_equal(
            x[row, : len(words)], expected_x[row, : len(words)]
        )
        assert not x[row, len(words) :].any()
        assert gold.tags[row] == list(tags)


@pytest.fixture
def run_without_data(lenet_run, tmp_path):
    """The LeNet run, its metadata pointing at a data set that is gone."""
    run = tmp_path / "run"
    shutil.copytree(lenet_run, run)
    with open(run / "metadata.json") as f:
        meta = json.load(f)
    meta["dataset"] = str(tmp_path / "deleted-images")
    with open(run / "metadata.json", "w") as f:
        json.dump(meta, f)
    return run


def test_unreadable_test_data_fails_unless_synthetic_is_allowed(
    run_without_data, tmp_path
):
    out = tmp_path / "out"
    with pytest.raises(ExportError) as e:
        export(run_without_data, base_dir=out)
    message = str(e.value)
    assert message.startswith(
        "Cannot verify on real test data: Cannot read the test split of "
        f"'{tmp_path / 'deleted-images'}': DataError: Unknown data set"
    )
    assert "--allow-synthetic" in message and "\n" not in message
    assert not out.exists()  # failed before anything was written

    with pytest.warns(
        SyntheticVerificationWarning, match="Verifying on synthetic inputs"
    ):
        result = export(run_without_data, base_dir=out, allow_synthetic=True)
    assert result.examples == "synthetic"
    assert result.verified_on == (
        "synthetic inputs (64 random examples, no labels)"
    )
    assert result.verification.keras.accuracy is None
    assert result.verification.artifact.max_diff <= 1e-5
    # Without verification nothing is claimed, and nothing is needed.
    result = export(run_without_data, base_dir=out, verify=False)
    assert result.verification is None and result.verified_on is None


def test_int8_never_calibrates_on_synthetic_inputs(
    run_without_data, mnist_test, tmp_path
):
    with pytest.raises(
        ExportError,
        match="^int8 calibrates on real "
        "training examples: Cannot read the train split",
    ):
        export(
            run_without_data,
            format="tflite",
            quantize="int8",
            output=tmp_path / "m.tflite",
            examples=mnist_test,
            allow_synthetic=True,
        )
    assert not (tmp_path / "m.tflite").exists()


def _digests(images):
    """SHA-1 of each uint8 image: a set to look examples up in."""
    return {
        hashlib.sha1(np.ascontiguousarray(i).tobytes()).hexdigest()
        for i in images
    }


def test_int8_calibrates_on_real_training_images_by_default(
    lenet_run, mnist, mnist_test, tmp_path, monkeypatch
):
    converted = spy(monkeypatch, tfl, "convert")
    result = export(
        lenet_run,
        format="tflite",
        quantize="int8",
        output=tmp_path / "m.tflite",
        examples=mnist_test,
        calibration_examples=50,
        int8_granularity="per_channel",
    )

    assert result.calibrated_on == "mnist train split (50 examples)"
    assert result.metadata["tflite"]["calibrated_on"] == result.calibrated_on
    ((_, kwargs),) = converted
    calibration = kwargs["representative_data"]
    assert calibration.shape == (50, 28, 28, 1)
    pixels = np.round(calibration * 255).astype(np.uint8)
    np.testing.assert_allclose(calibration, pixels / 255.0, atol=1e-6)
    train, test = _digests(mnist["train"][0]), _digests(mnist["test"][0])
    found = _digests(pixels)
    assert len(found) == 50 and found <= train and not found & test
    # `limit` keeps the first examples of the split: the first 50 digits.
    assert found == _digests(mnist["train"][0][:50])
