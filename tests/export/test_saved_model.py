"""SavedModel export: loads without kerascnn, signatures agree, atomic."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kerascnn.errors import ExportError, KerasCNNError
from kerascnn.export import saved_model as sm
from tests.helpers import export

LOAD_WITH_TF_ONLY = """
import json, sys
import numpy as np
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
x = np.load(sys.argv[2])
out = loaded.signatures["serving_default"](images=tf.constant(x))
np.save(sys.argv[3], out["probabilities"].numpy())
meta = loaded.signatures["metadata"]()["metadata"].numpy().decode()
print(json.dumps({
    "signatures": sorted(loaded.signatures.keys()),
    "class_names": [c.decode() for c in out["class_names"].numpy()[:3]],
    "kerascnn_imported": any(m.startswith("kerascnn") for m in sys.modules),
    "metadata": json.loads(meta),
}))
"""


@pytest.fixture(scope="module")
def exported(lenet_run, mnist_test, tmp_path_factory):
    base = tmp_path_factory.mktemp("saved_models")
    result = export(lenet_run, base_dir=base, examples=mnist_test)
    return result, base


def _png(pixels):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def test_layout_and_verification(exported):
    result, base = exported
    assert result.path == os.path.join(base, "lenet", "1")
    assert result.version == 1
    assert os.path.isfile(os.path.join(result.path, "saved_model.pb"))
    # A model server running as another user can read the version folder.
    assert os.stat(result.path).st_mode & 0o005 == 0o005
    with open(os.path.join(result.path, "assets", sm.METADATA_ASSET)) as f:
        meta = json.load(f)
    assert meta["model"] == "lenet" and meta["dataset"] == "mnist"
    assert meta["class_names"] == [str(i) for i in range(10)]
    report = result.verification
    assert report.artifact.max_diff <= 1e-5
    assert report.artifact.accuracy == report.keras.accuracy > 0.5
    assert "saved_model" in report.table()


def test_loads_in_plain_tensorflow_process(
    exported, lenet_run, mnist_test, tmp_path
):
    import keras

    import kerascnn.layers  # noqa: F401

    result, _ = exported
    x = mnist_test[0][:32]
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_WITH_TF_ONLY,
            result.path,
            str(tmp_path / "x.npy"),
            str(tmp_path / "y.npy"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not info["kerascnn_imported"]
    assert info["signatures"] == [
        "feature_map_gradients",
        "metadata",
        "predict_images",
        "predict_pixels",
        "serving_default",
    ]
    assert info["metadata"]["preprocessing"]["channels"] == 1
    model = keras.saving.load_model(os.path.join(lenet_run, "model.keras"))
    expected = np.asarray(model(x))
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, atol=1e-5)
    top = [str(i) for i in expected.argmax(-1)[:3]]
    assert info["class_names"] == top


def test_predict_images_matches_serving_default_on_real_png(exported, mnist):
    import tensorflow as tf

    result, _ = exported
    loaded = tf.saved_model.load(result.path)
    pixels = mnist["test"][0][:4]
    pngs = tf.constant([_png(p[..., 0]) for p in pixels])
    from_bytes = loaded.signatures["predict_images"](images=pngs)
    from_floats = loaded.signatures["serving_default"](
        images=tf.constant(pixels / 255.0, tf.float32)
    )
    from_pixels = loaded.signatures["predict_pixels"](
        pixels=tf.constant(pixels, tf.float32)
    )
    for out in (from_bytes, from_pixels):
        np.testing.assert_allclose(
            out["probabilities"].numpy(),
            from_floats["probabilities"].numpy(),
            atol=1e-5,
        )
        assert (
            out["class_names"].numpy() == from_floats["class_names"].numpy()
        ).all()


def test_predict_images_resizes_and_converts_channels(exported, mnist):
    import tensorflow as tf
    from PIL import Image

    result, _ = exported
    loaded = tf.saved_model.load(result.path)
    rgb = Image.fromarray(mnist["test"][0][0, ..., 0]).convert("RGB")
    buf = io.BytesIO()
    rgb.resize((56, 40)).save(buf, format="JPEG")
    out = loaded.signatures["predict_images"](
        images=tf.constant([buf.getvalue()])
    )
    assert out["probabilities"].shape == (1, 10)
    np.testing.assert_allclose(out["probabilities"].numpy().sum(), 1, rtol=1e-5)


def _decoded_like_predict_images(rgb, luma_weights):
    """Independent reference: grey by `luma_weights`, the documented
    resize (bilinear, anti-aliased when shrinking, rounded to uint8) to
    28x28 with tf.image, then the training scale 1/255."""
    import tensorflow as tf

    grey = np.round(rgb.astype(np.float64) @ np.array(luma_weights))
    small = tf.image.resize(grey[..., None], (28, 28), antialias=True)
    small = np.clip(np.round(small.numpy()), 0, 255)
    return (small / 255.0).astype(np.float32)


def test_predict_images_resize_and_channel_values(exported, lenet_run, mnist):
    import keras
    import tensorflow as tf
    from PIL import Image

    result, _ = exported
    predict_images = tf.saved_model.load(result.path).signatures[
        "predict_images"
    ]
    model = keras.saving.load_model(os.path.join(lenet_run, "model.keras"))
    digits = mnist["test"][0][:8, ..., 0]

    def both(make_rgb, weights):
        """`(predict_images, Keras on the reference)` for 56x40 PNGs."""
        images = [
            np.asarray(Image.fromarray(make_rgb(d)).resize((56, 40)))
            for d in digits
        ]
        out = predict_images(images=tf.constant([_png(i) for i in images]))
        x = np.stack([_decoded_like_predict_images(i, weights) for i in images])
        return out["probabilities"].numpy(), model.predict(x, verbose=0)

    # Grey digits stored as RGB: any grey conversion is exact, so this
    # checks the resize and scaling value for value.
    got, expected = both(lambda d: np.stack([d] * 3, -1), (1 / 3,) * 3)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)

    # Coloured digits: channels differ, so the weights matter. TensorFlow
    # converts with ITU-R BT.601 luma (libpng's fixed point: at most one
    # grey level from the rounded reference, ~0.003 in probability);
    # BT.709 weights are tens of grey levels off and miss the tolerance.
    def coloured(d):
        return np.stack([d, d // 2, 255 - d], -1)

    got, expected = both(coloured, (0.299, 0.587, 0.114))
    np.testing.assert_allclose(got, expected, atol=1e-2, rtol=0)
    assert (got.argmax(-1) == expected.argmax(-1)).all()
    _, wrong = both(coloured, (0.2126, 0.7152, 0.0722))
    assert np.abs(got - wrong).max() > 1e-2


def test_saved_model_cli_lists_signatures(exported):
    result, _ = exported
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tensorflow.python.tools.saved_model_cli",
            "show",
            "--dir",
            result.path,
            "--all",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("serving_default", "predict_images", "predict_pixels"):
        assert f"signature_def['{name}']" in proc.stdout


def test_next_version_and_existing_version(lenet_run, tmp_path):
    first = export(lenet_run, base_dir=tmp_path, verify=False)
    same = export(lenet_run, base_dir=tmp_path, verify=False)
    assert (first.version, same.version) == (1, 1) and not same.written
    second = export(lenet_run, base_dir=tmp_path, version=2, verify=False)
    assert second.version == 2 and second.written
    with pytest.raises(ExportError, match="already exists.*overwrite"):
        export(lenet_run, base_dir=tmp_path, version=2, verify=False)
    again = export(
        lenet_run, base_dir=tmp_path, version=2, overwrite=True, verify=False
    )
    assert again.path == second.path
    assert sorted(os.listdir(tmp_path / "lenet")) == [
        "1",
        "2",
        "MODEL_CARD.md",
        "model_card.json",
    ]


def test_failed_write_leaves_nothing(lenet_run, tmp_path, monkeypatch):
    real = sm.write_saved_model

    def half_written(model, meta, path, task):
        real(model, meta, path, task)
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(sm, "write_saved_model", half_written)
    with pytest.raises(RuntimeError, match="simulated"):
        export(lenet_run, base_dir=tmp_path, verify=False)
    assert os.listdir(tmp_path / "lenet") == []
    monkeypatch.setattr(sm, "write_saved_model", real)
    assert export(lenet_run, base_dir=tmp_path, verify=False).version == 1


def test_failed_verification_leaves_nothing(
    lenet_run, mnist_test, tmp_path, monkeypatch
):
    from kerascnn.export import verify

    monkeypatch.setattr(verify, "SAVED_MODEL_TOLERANCE", -1.0)
    with pytest.raises(ExportError, match="Verification failed"):
        export(lenet_run, base_dir=tmp_path, examples=mnist_test)
    assert os.listdir(tmp_path / "lenet") == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"format": "pytorch"},
            "`format` must be one of 'saved_model', 'tflite', 'onnx', "
            "'openvino'. Received: format='pytorch'",
        ),
        (
            {"format": "tflite", "quantize": "int4"},
            "`quantize` must be one of 'none', 'dynamic', 'float16', 'int8'. "
            "Received: quantize='int4'",
        ),
        (
            {"quantize": "int8"},
            "`quantize`, `int8_io` and `max_length` apply to "
            "format='tflite' (--tflite) only. "
            "Received: format='saved_model', quantize='int8'",
        ),
        (
            {"format": "onnx", "max_length": 32},
            "`quantize`, `int8_io` and `max_length` apply to "
            "format='tflite' (--tflite) only. "
            "Received: format='onnx', max_length=32",
        ),
        (
            {"output": "x.onnx"},
            "`output` applies to the tflite, onnx and openvino formats (a "
            "SavedModel goes to <base_dir>/<name>/<version>/). "
            "Received: output='x.onnx'",
        ),
        (
            {"version": "v0.1"},
            "`version` must be a positive integer. Received: version='v0.1'",
        ),
        (
            {"version": 0},
            "`version` must be a positive integer. Received: version=0",
        ),
        (
            {"format": "tflite", "version": 2},
            "`version` applies to SavedModel "
            "exports only. Received: "
            "format='tflite', version=2",
        ),
        (
            {"name": "../x"},
            "`name` must be a plain folder name (no path "
            "separator, not hidden). Received: name='../x'",
        ),
        (
            {"verify_examples": 0},
            "`verify_examples` must be a positive integer. "
            "Received: verify_examples=0",
        ),
        (
            {"max_accuracy_drop": -1},
            "`max_accuracy_drop` must be >= 0. Received: max_accuracy_drop=-1",
        ),
        (
            {"format": "tflite", "int8_io": True},
            "int8 input/output needs quantize='int8'. "
            "Received: quantize='none', int8_io=True",
        ),
        ({"quantise": "int8"}, "Unknown export setting(s): quantise. "),
    ],
)
def test_bad_arguments(lenet_run, tmp_path, monkeypatch, kwargs, message):
    from kerascnn import metadata

    # Settings are checked before the model is even loaded.
    monkeypatch.setattr(metadata, "load_model_and_metadata", None)
    with pytest.raises(ExportError) as e:
        export(lenet_run, base_dir=tmp_path, verify=False, **kwargs)
    assert message in str(e.value)
    assert not os.path.exists(tmp_path / "lenet")


def test_config_object_and_keywords_build_the_same_export(lenet_run, tmp_path):
    from kerascnn.export import ExportConfig

    config = ExportConfig(base_dir=str(tmp_path), verify=False)
    first = export(lenet_run, config=config)
    # Keywords override the config's fields; the config itself is unchanged.
    second = export(lenet_run, config=config, version=5)
    assert (first.version, second.version) == (1, 5)
    assert config.version is None
    assert config.to_dict()["base_dir"] == str(tmp_path)
    with pytest.raises(ExportError, match="overwrite"):
        export(lenet_run, config=config, version=5)


def test_source_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(KerasCNNError, match="not a Keras model"):
        export(tmp_path / "notes.txt", base_dir=tmp_path)
    with pytest.raises(KerasCNNError, match="without model.keras"):
        export(tmp_path, base_dir=tmp_path)
    (tmp_path / "broken.keras").write_text("not a zip")
    with pytest.raises(KerasCNNError, match="Cannot load Keras model"):
        export(tmp_path / "broken.keras", base_dir=tmp_path)


def test_feature_map_gradients_of_a_nested_base_equal_keras_grad_cam(
    tmp_path,
):
    """A fine-tuned model around a nested backbone exports Grad-CAM's
    inputs from inside the backbone; the SavedModel's maps equal the
    Keras model's."""
    import keras
    import tensorflow as tf

    from kerascnn import tasks
    from kerascnn.export.saved_model import write_saved_model
    from kerascnn.metadata import ModelMetadata
    from kerascnn.models import build
    from kerascnn.visualize import Explainer
    from kerascnn.visualize.explain_methods import SignatureModel

    keras.utils.set_random_seed(4)
    flat = build("lenet")
    backbone = keras.Model(
        flat.inputs[0], flat.get_layer("flatten").output, name="backbone"
    )
    inputs = keras.Input((28, 28, 1))
    x = backbone(inputs)
    for name in ("c5_fc", "f6_fc", "predictions"):
        x = flat.get_layer(name)(x)
    nested = keras.Model(inputs, x, name="finetuned")
    meta = ModelMetadata(
        model="lenet",
        input_shape=(28, 28, 1),
        class_names=[str(i) for i in range(10)],
        preprocessing={"scale": 1 / 255, "channels": 1},
    )
    path = str(tmp_path / "nested" / "1")
    write_saved_model(nested, meta, path, tasks.IMAGE_CLASSIFICATION)
    images = np.random.default_rng(5).random((2, 28, 28, 1)).astype("f4")
    signature = SignatureModel(tf.saved_model.load(path))
    assert signature.has_cam
    got = Explainer(signature).explain(images, "gradcam", 2)
    want = Explainer(nested).explain(images, "gradcam", 2)
    assert want.layer == "backbone/c3_conv"
    assert got.maps.max() == pytest.approx(1.0)
    np.testing.assert_allclose(got.maps, want.maps, atol=1e-4)
