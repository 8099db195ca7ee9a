"""TFLite export: every quantization mode runs, int8 is int8, metadata."""

import json
import os

import pytest

from kerascnn.errors import ExportError
from kerascnn.export import tflite as tfl
from kerascnn.export.inspect import inspect_artifact
from tests.export.conftest import tflite_ops
from tests.helpers import export


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tmp_path_factory.mktemp("saved_models")


@pytest.mark.parametrize("quantize", ["none", "dynamic", "float16", "int8"])
def test_each_quantization_mode(
    lenet_run, mnist_test, mnist_calibration, base, quantize
):
    result = export(
        lenet_run,
        format="tflite",
        quantize=quantize,
        base_dir=base,
        examples=mnist_test,
        calibration_data=mnist_calibration,
    )
    name = "lenet.tflite" if quantize == "none" else f"lenet-{quantize}.tflite"
    assert result.path == os.path.join(base, "lenet", name)
    assert os.path.isfile(result.path + ".json")
    assert result.verified_on == "given examples (200 examples)"
    builtin, custom = tflite_ops(result.path)
    assert custom == []  # no Flex / custom ops: builtins only
    assert {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX"} <= builtin
    assert result.metadata["tflite"]["builtin_ops_only"] is True
    report = result.verification
    if quantize == "none":
        assert report.artifact.max_diff <= 1e-3
    # Real MNIST test digits: at most 1 pp below Keras.
    assert report.accuracy_drop <= 1.0
    assert report.artifact.accuracy > 0.5


def test_int8_has_int8_weights_and_is_small(
    base, lenet_run, mnist_test, mnist_calibration
):
    path = os.path.join(base, "lenet", "lenet-int8.tflite")
    if not os.path.exists(path):
        export(
            lenet_run,
            format="tflite",
            quantize="int8",
            base_dir=base,
            examples=mnist_test,
            calibration_data=mnist_calibration,
        )
    float_path = os.path.join(base, "lenet", "lenet.tflite")
    if not os.path.exists(float_path):
        export(lenet_run, format="tflite", base_dir=base, verify=False)
    # int8 weights take a quarter of float32's bytes; int32 biases, the
    # scales and zero points, the graph and the metadata add a few
    # percent (measured: 0.268 for this LeNet, 61,706 parameters).
    ratio = os.path.getsize(path) / os.path.getsize(float_path)
    assert 0.22 < ratio <= 0.30, ratio
    info = inspect_artifact(path)
    weights = [
        t
        for t in info["tensors"]
        if "MatMul" in t["name"] or "convolution" in t["name"]
    ]
    assert weights and all(t["dtype"] == "int8" for t in weights)
    assert all(t["quantization"] for t in weights)
    (sig,) = info["signatures"].values()
    assert sig["inputs"][0]["dtype"] == "float32"  # float I/O by default
    assert info["metadata"]["tflite"]["quantize"] == "int8"
    assert info["metadata_source"] == "flatbuffer"


def test_int8_io(lenet_run, mnist_test, mnist_calibration, tmp_path):
    result = export(
        lenet_run,
        format="tflite",
        quantize="int8",
        int8_io=True,
        output=tmp_path / "m.tflite",
        examples=mnist_test,
        calibration_data=mnist_calibration,
    )
    (sig,) = inspect_artifact(result.path)["signatures"].values()
    assert sig["inputs"][0]["dtype"] == "int8"
    assert sig["inputs"][0]["quantization"]["scale"] > 0
    assert sig["outputs"][0]["dtype"] == "int8"
    assert result.verification.accuracy_drop <= 1.0


def test_metadata_round_trip_in_flatbuffer(lenet_run, tmp_path):
    result = export(
        lenet_run, format="tflite", output=tmp_path / "m.tflite", verify=False
    )
    with open(result.path, "rb") as f:
        meta = tfl.read_metadata(f.read())
    assert meta["class_names"] == [str(i) for i in range(10)]
    assert meta["preprocessing"]["scale"] == pytest.approx(1 / 255)
    with open(result.path + ".json") as f:
        assert json.load(f) == meta


def test_quantized_accuracy_drop_fails_cleanly(
    lenet_run, mnist_test, mnist_calibration, tmp_path, monkeypatch
):
    from kerascnn.export import verify

    scores = iter([0.9, 0.5])  # Keras, then the artifact: a 40 pp drop
    monkeypatch.setattr(verify, "top1_accuracy", lambda *a: next(scores))
    with pytest.raises(ExportError, match="40.00 pp below Keras"):
        export(
            lenet_run,
            format="tflite",
            quantize="dynamic",
            output=tmp_path / "m.tflite",
            examples=mnist_test,
        )
    assert os.listdir(tmp_path) == []


def test_existing_file_and_int8_without_data(lenet_run, tmp_path):
    out = tmp_path / "m.tflite"
    out.write_bytes(b"old")
    with pytest.raises(ExportError, match="already exists"):
        export(lenet_run, format="tflite", output=out, verify=False)
    assert out.read_bytes() == b"old"
    with pytest.raises(ExportError, match="int8 input/output needs"):
        export(
            lenet_run,
            format="tflite",
            int8_io=True,
            output=tmp_path / "n.tflite",
            verify=False,
        )


def _scales_per_weight(path):
    info = inspect_artifact(path)
    weights = [
        t
        for t in info["tensors"]
        if "convolution" in t["name"]
        and t["dtype"] == "int8"
        and len(t["shape"]) == 4
    ]
    scales = [t["quantization"]["scale"] for t in weights]
    return [len(s) if isinstance(s, list) else 1 for s in scales]


def test_int8_granularity_per_tensor_is_smaller(
    lenet_run, mnist_test, mnist_calibration, tmp_path
):
    results = {
        g: export(
            lenet_run,
            format="tflite",
            quantize="int8",
            output=tmp_path / f"{g}.tflite",
            examples=mnist_test,
            calibration_data=mnist_calibration,
            int8_granularity=g,
        )
        for g in ("per_tensor", "per_channel", "auto")
    }
    tensor, channel = results["per_tensor"], results["per_channel"]
    assert tensor.size_bytes < channel.size_bytes
    assert set(_scales_per_weight(tensor.path)) == {1}
    assert max(_scales_per_weight(channel.path)) > 1
    # auto keeps per-tensor scales because they pass verification here.
    auto = results["auto"]
    assert auto.metadata["tflite"]["int8_granularity"] == "per_tensor"
    assert auto.verification.accuracy_drop <= 1.0
    with pytest.raises(ExportError, match="int8_granularity"):
        export(
            lenet_run,
            format="tflite",
            quantize="int8",
            int8_granularity="per_row",
        )
