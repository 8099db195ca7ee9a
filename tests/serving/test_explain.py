"""`POST /v1/models/<name>:explain`: off by default (404 that says how to
turn it on), on with `enable_explain` (maps equal to the library's on the
Keras model: Grad-CAM and Grad-CAM++ through the exported
`feature_map_gradients` signature, the input-gradient methods through
`serving_default`)."""

import json
import urllib.error
import urllib.request

import numpy as np
import pytest

from kerascnn.serving import ServeOptions, build_servers


@pytest.fixture(scope="module")
def lenet_exported(tmp_path_factory):
    """`(model base path, the Keras model exported there)`."""
    import keras

    from kerascnn import tasks
    from kerascnn.export.saved_model import write_saved_model
    from kerascnn.metadata import ModelMetadata
    from kerascnn.models import build

    keras.utils.set_random_seed(3)
    model = build("lenet")
    meta = ModelMetadata(
        model="lenet",
        dataset="mnist",
        input_shape=(28, 28, 1),
        class_names=[str(i) for i in range(10)],
        preprocessing={"scale": 1 / 255, "channels": 1, "image_size": [28, 28]},
    )
    base = tmp_path_factory.mktemp("served")
    write_saved_model(
        model, meta, str(base / "lenet" / "1"), tasks.IMAGE_CLASSIFICATION
    )
    return str(base), model


@pytest.fixture(scope="module")
def lenet_models(lenet_exported):
    return lenet_exported[0]


def _serve(base, **options):
    servers = build_servers(
        ServeOptions(model_base_path=base, rest_api_port=0, port=0, **options)
    )
    servers.http.start()
    return servers


def _post(url, body):
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


IMAGE = np.random.default_rng(0).random((1, 28, 28, 1)).round(3)


def test_explain_is_off_by_default(lenet_models):
    servers = _serve(lenet_models)
    try:
        url = f"{servers.http.url}/v1/models/lenet:explain"
        status, answer = _post(url, {"instances": IMAGE.tolist()})
        assert status == 404
        assert "kerascnn serve --enable-explain" in answer["error"]
        # TF Serving's own routes are untouched.
        status, answer = _post(
            f"{servers.http.url}/v1/models/lenet:predict",
            {"instances": IMAGE.tolist()},
        )
        assert status == 200 and len(answer["predictions"]) == 1
    finally:
        servers.close()


def test_explain_answers_the_signature_maps(lenet_models):
    from kerascnn.visualize import Explainer
    from kerascnn.visualize.explain_pictures import load_explained_model

    servers = _serve(lenet_models, enable_explain=True)
    try:
        url = f"{servers.http.url}/v1/models/lenet/versions/1:explain"
        status, answer = _post(
            url,
            {"instances": IMAGE.tolist(), "class_index": 4,
             "method": "smoothgrad"},
        )  # fmt: skip
        assert status == 200, answer
        assert answer["method"] == "smoothgrad"
        assert answer["score"] == "probability"
        (row,) = answer["explanations"]
        heat = np.asarray(row["map"])
        assert heat.shape == (28, 28) and row["class_index"] == 4
        assert heat.min() >= 0 and heat.max() == pytest.approx(1.0)
        model, _ = load_explained_model(f"{lenet_models}/lenet")
        want = Explainer(model).explain(IMAGE, "smoothgrad", 4)
        np.testing.assert_allclose(heat, want.maps[0], atol=1e-3)
        assert row["probability"] == pytest.approx(
            float(want.probabilities[0, 4]), rel=1e-4
        )
        status, answer = _post(url, {"instances": IMAGE.tolist(),
                                     "method": "occlusion"})  # fmt: skip
        assert status == 400 and "method must be one of" in answer["error"]
        status, answer = _post(url, {"instances": IMAGE.tolist(),
                                     "class_index": 10})  # fmt: skip
        assert status == 400 and "[0, 10)" in answer["error"]
        status, answer = _post(url, {"instances": [1, 2]})
        assert status == 400 and "rank 3" in answer["error"]
        status, answer = _post(
            f"{servers.http.url}/v1/models/nope:explain",
            {"instances": IMAGE.tolist()},
        )
        assert status == 404
    finally:
        servers.close()


def test_grad_cam_is_the_default_and_equals_the_keras_models(lenet_exported):
    """The SavedModel has no layers, but its `feature_map_gradients`
    signature gives what Grad-CAM and Grad-CAM++ need: the maps equal
    `kerascnn visualize explain`'s on the Keras model, the layer included
    (the last spatial feature map)."""
    import tensorflow as tf

    from kerascnn.visualize import Explainer

    lenet_models, model = lenet_exported
    images = np.random.default_rng(2).random((3, 28, 28, 1)).round(3)
    loaded = tf.saved_model.load(f"{lenet_models}/lenet/1")
    outputs = loaded.signatures["feature_map_gradients"].structured_outputs
    assert (
        outputs["feature_map"].shape[1:]
        == model.get_layer(Explainer(model).layer).output.shape[1:]
    )
    servers = _serve(lenet_models, enable_explain=True)
    try:
        url = f"{servers.http.url}/v1/models/lenet:explain"
        status, answer = _post(url, {"instances": images.tolist()})
        assert status == 200, answer
        assert answer["method"] == "gradcam" and answer["score"] == "logit"
        want = Explainer(model).explain(images, "gradcam")
        got = np.asarray([row["map"] for row in answer["explanations"]])
        np.testing.assert_allclose(got, want.maps, atol=1e-3)
        assert got.max() > 0  # not a blank map that equals a blank map
        assert [r["class_index"] for r in answer["explanations"]] == (
            want.class_index.tolist()
        )
        for method in ("gradcam", "gradcam++"):
            status, answer = _post(
                url,
                {"instances": images.tolist(), "method": method,
                 "class_index": 6},
            )  # fmt: skip
            assert status == 200, answer
            want = Explainer(model).explain(images, method, 6)
            got = np.asarray([row["map"] for row in answer["explanations"]])
            np.testing.assert_allclose(got, want.maps, atol=1e-3)
            probs = [r["probability"] for r in answer["explanations"]]
            np.testing.assert_allclose(
                probs, want.probabilities[:, 6], rtol=1e-4
            )
    finally:
        servers.close()


def test_a_savedmodel_without_feature_map_gradients_gets_smoothgrad(
    tmp_path,
):
    """A SavedModel of a flat model (no spatial feature map) has no
    `feature_map_gradients`: SmoothGrad by default; Grad-CAM is refused
    in one line naming the methods that work."""
    import keras

    from kerascnn import tasks
    from kerascnn.export.saved_model import write_saved_model
    from kerascnn.metadata import ModelMetadata

    keras.utils.set_random_seed(1)
    inputs = keras.Input((28, 28, 1))
    flat = keras.layers.Flatten()(inputs)
    model = keras.Model(
        inputs, keras.layers.Dense(10, activation="softmax")(flat)
    )
    meta = ModelMetadata(
        model="mlp",
        dataset="mnist",
        input_shape=(28, 28, 1),
        class_names=[str(i) for i in range(10)],
        preprocessing={"scale": 1 / 255, "channels": 1},
    )
    write_saved_model(
        model, meta, str(tmp_path / "mlp" / "1"), tasks.IMAGE_CLASSIFICATION
    )
    servers = _serve(str(tmp_path), enable_explain=True)
    try:
        url = f"{servers.http.url}/v1/models/mlp:explain"
        status, answer = _post(url, {"instances": IMAGE.tolist()})
        assert status == 200, answer
        assert answer["method"] == "smoothgrad"
        status, answer = _post(
            url, {"instances": IMAGE.tolist(), "method": "gradcam"}
        )
        assert status == 400
        assert "feature_map_gradients" in answer["error"]
        assert "smoothgrad" in answer["error"]
    finally:
        servers.close()


def test_explain_takes_image_files_like_predict_images(lenet_models):
    """The try-it page sends `{"b64": PNG}`: decoded and preprocessed with
    the model's metadata, the map is the one of the model input."""
    import base64
    import io

    from PIL import Image

    from kerascnn.visualize import Explainer
    from kerascnn.visualize.explain_pictures import load_explained_model

    pixels = (np.random.default_rng(1).random((28, 28)) * 255).astype(np.uint8)
    png = io.BytesIO()
    Image.fromarray(pixels).save(png, format="PNG")
    b64 = base64.b64encode(png.getvalue()).decode()
    servers = _serve(lenet_models, enable_explain=True)
    try:
        url = f"{servers.http.url}/v1/models/lenet:explain"
        status, answer = _post(
            url,
            {"instances": [{"b64": b64}], "method": "integrated-gradients"},
        )
        assert status == 200, answer
        model, meta = load_explained_model(f"{lenet_models}/lenet")
        x = pixels[None, :, :, None].astype(np.float32) / 255
        black = np.zeros_like(x)
        want = Explainer(model).explain(
            x, "integrated-gradients", baseline=black
        )
        heat = np.asarray(answer["explanations"][0]["map"])
        np.testing.assert_allclose(heat, want.maps[0], atol=1e-3)
        status, answer = _post(url, {"instances": [{"b64": "bm90IGFu"}]})
        assert status == 400 and "base64 PNG, JPEG" in answer["error"]
    finally:
        servers.close()
