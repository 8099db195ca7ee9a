"""The REST server against a tiny exported LeNet, over real HTTP.

One untrained LeNet is exported twice (versions 1 and 2) once per session;
the server binds 127.0.0.1 on a free port in a background thread and is
shut down when the module's tests are done.
"""

import base64
import json
import os
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

from tests.helpers import save_run

MNIST_CLASSES = [str(i) for i in range(10)]
MNIST_PREPROCESSING = {
    "scale": 1 / 255,
    "mean": None,
    "std": None,
    "channels": 1,
    "image_size": [28, 28],
}
_CACHE = {}


def exported_lenet(tmp_path_factory):
    """`(base_dir, keras model of version 2)`: lenet versions 1 and 2,
    untrained LeNets with different weights (seeds 0 and 1), built once.

    Versions differ so that serving the wrong one fails a test; the Keras
    models of both are in `lenet_models(...)`.
    """
    if "lenet" not in _CACHE:
        import keras

        from kerascnn import models
        from kerascnn.export import export
        from kerascnn.metadata import ModelMetadata

        meta = ModelMetadata(
            model="lenet",
            dataset="mnist",
            input_shape=(28, 28, 1),
            class_names=MNIST_CLASSES,
            preprocessing=MNIST_PREPROCESSING,
        )
        runs = tmp_path_factory.mktemp("runs")
        base = tmp_path_factory.mktemp("saved_models")
        by_version = {}
        for version in (1, 2):
            keras.utils.set_random_seed(version - 1)
            model = models.build("lenet")
            run = save_run(model, meta, runs / f"lenet-{version}")
            export(run, base_dir=str(base), version=version, verify=False)
            by_version[version] = model
        # Hidden and non-integer folders are ignored.
        import shutil

        os.makedirs(base / "lenet" / ".tmp-3-abc")
        shutil.copytree(base / "lenet" / "1", base / "lenet" / "v0.1")
        _CACHE["lenet"] = (base, by_version[2])
        _CACHE["lenet_models"] = by_version
    return _CACHE["lenet"]


def lenet_models(tmp_path_factory):
    """`{version: keras model}` of `exported_lenet`'s two versions."""
    exported_lenet(tmp_path_factory)
    return _CACHE["lenet_models"]


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    return exported_lenet(tmp_path_factory)


@pytest.fixture(scope="module")
def server(lenet):
    from kerascnn.serving import ServeOptions, make_server

    base, _ = lenet
    srv = make_server(
        ServeOptions(model_base_path=base, rest_api_port=0, all_versions=True)
    )
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=10)


def call(server, path, body=None, raw=None):
    """`(status, JSON answer)`; `body` is JSON-encoded, `raw` sent as is."""
    data = (
        raw
        if raw is not None
        else (None if body is None else json.dumps(body).encode())
    )
    request = urllib.request.Request(
        server.url + path,
        data=data,
        method="GET" if data is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def digits(n=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28, 1)).astype(np.float32)


# === Status and metadata ===


def test_status_lists_integer_versions_only(server):
    status, answer = call(server, "/v1/models/lenet")
    assert status == 200
    versions = [s["version"] for s in answer["model_version_status"]]
    assert versions == ["2", "1"]
    assert answer["model_version_status"][0] == {
        "version": "2",
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }
    status, answer = call(server, "/v1/models/lenet/versions/1")
    assert status == 200
    assert [s["version"] for s in answer["model_version_status"]] == ["1"]


def test_metadata_has_signatures_and_our_metadata(server):
    status, answer = call(server, "/v1/models/lenet/metadata")
    assert status == 200
    assert answer["model_spec"] == {
        "name": "lenet",
        "signature_name": "",
        "version": "2",
    }
    defs = answer["metadata"]["signature_def"]["signature_def"]
    assert set(defs) >= {
        "serving_default",
        "predict_pixels",
        "predict_images",
        "metadata",
    }
    images = defs["serving_default"]["inputs"]["images"]
    assert images["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in images["tensor_shape"]["dim"]] == [
        "-1",
        "28",
        "28",
        "1",
    ]
    assert defs["predict_images"]["inputs"]["images"]["dtype"] == "DT_STRING"
    assert set(defs["serving_default"]["outputs"]) == {
        "probabilities",
        "class_ids",
        "class_names",
    }
    assert set(answer) == {"model_spec", "metadata"}  # as TF Serving's
    assert images["name"] == "serving_default_images:0"
    assert defs["serving_default"]["method_name"] == (
        "tensorflow/serving/predict"
    )
    assert defs["serving_default"]["defaults"] == {}


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/nope",
        "/v1/models/nope:predict",
        "/v1/models/lenet/versions/7",
        "/v1/models/lenet/versions/7/metadata",
        "/v2/whatever",
    ],
)
def test_unknown_model_version_or_path_is_404_json(server, path):
    body = {"instances": [[0.0]]} if path.endswith(":predict") else None
    status, answer = call(server, path, body)
    assert status == 404
    assert set(answer) == {"error"}
    assert "Traceback" not in answer["error"]


# === :predict ===


def test_predict_rows_match_keras(server, lenet):
    _, model = lenet
    x = digits() / 255.0
    status, answer = call(
        server, "/v1/models/lenet:predict", {"instances": x.tolist()}
    )
    assert status == 200, answer
    rows = answer["predictions"]
    assert len(rows) == 2 and set(rows[0]) == {
        "probabilities",
        "class_ids",
        "class_names",
    }
    expected = np.asarray(model(x, training=False))
    got = np.array([r["probabilities"] for r in rows])
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert [r["class_ids"] for r in rows] == expected.argmax(-1).tolist()
    assert [r["class_names"] for r in rows] == [
        str(i) for i in expected.argmax(-1)
    ]


def test_predict_columnar_and_specific_version(server, tmp_path_factory):
    models = lenet_models(tmp_path_factory)
    x = digits(3, seed=1) / 255.0
    by_version = {
        v: np.asarray(m(x, training=False)) for v, m in models.items()
    }
    # The versions answer differently, so the wrong one fails below.
    assert np.abs(by_version[1] - by_version[2]).max() > 1e-3
    for path, version in (
        ("/v1/models/lenet:predict", 2),  # the latest
        ("/v1/models/lenet/versions/2:predict", 2),
        ("/v1/models/lenet/versions/1:predict", 1),
    ):
        expected = by_version[version]
        status, answer = call(
            server,
            path,
            {
                "signature_name": "serving_default",
                "inputs": {"images": x.tolist()},
            },
        )
        assert status == 200, answer
        got = np.array(answer["outputs"]["probabilities"])
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
        assert answer["outputs"]["class_names"] == [
            str(i) for i in expected.argmax(-1)
        ]
    # A single input may also be sent bare.
    status, answer = call(
        server, "/v1/models/lenet:predict", {"inputs": x.tolist()}
    )
    assert status == 200
    assert len(answer["outputs"]["class_ids"]) == 3


def test_predict_images_b64_png_matches_pixels(server):
    import tensorflow as tf

    pixels = digits(2, seed=2)
    pngs = [tf.io.encode_png(p.astype(np.uint8)).numpy() for p in pixels]
    status, by_image = call(
        server,
        "/v1/models/lenet:predict",
        {
            "signature_name": "predict_images",
            "instances": [{"b64": base64.b64encode(p).decode()} for p in pngs],
        },
    )
    assert status == 200, by_image
    status, by_pixels = call(
        server,
        "/v1/models/lenet:predict",
        {"signature_name": "predict_pixels", "instances": pixels.tolist()},
    )
    assert status == 200, by_pixels
    assert [r["class_ids"] for r in by_image["predictions"]] == [
        r["class_ids"] for r in by_pixels["predictions"]
    ]
    np.testing.assert_allclose(
        [r["probabilities"] for r in by_image["predictions"]],
        [r["probabilities"] for r in by_pixels["predictions"]],
        atol=1e-5,
    )


def test_metadata_signature_in_columnar_form(server):
    status, answer = call(
        server,
        "/v1/models/lenet:predict",
        {"signature_name": "metadata", "inputs": {}},
    )
    assert status == 200, answer
    assert json.loads(answer["outputs"])["model"] == "lenet"


# === Bad requests ===


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b'{"instances": [1, 2', "Malformed JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"signature_name": "serving_default"}', "Missing 'instances'"),
        (b'{"instances": [], "inputs": []}', "not both"),
        (
            json.dumps({"instances": np.zeros((2, 28, 28)).tolist()}).encode(),
            "input 'images' expects shape (-1, 28, 28, 1); "
            "received (2, 28, 28)",
        ),
        (
            json.dumps(
                {"instances": [[[[0.0]] * 28] * 28, [[[0.0]] * 27]]}
            ).encode(),
            "not a rectangular array",
        ),
        (json.dumps({"instances": ["a"]}).encode(), "expects float32 numbers"),
        (
            b'{"signature_name": "nope", "instances": [1]}',
            "'nope' not found in signature def",
        ),
        (
            b'{"signature_name": "predict_images", "instances": '
            b'[{"b64": "not base64!"}]}',
            "invalid base64",
        ),
        (
            b'{"signature_name": "predict_images", "instances": '
            b'[{"b64": "aGVsbG8="}]}',
            "rejected the input: Unknown image file format",
        ),
        (b'{"instances": []}', "'instances' is empty"),
    ],
)
def test_bad_requests_are_400_and_server_survives(server, raw, expected):
    status, answer = call(server, "/v1/models/lenet:predict", raw=raw)
    assert status == 400, answer
    assert set(answer) == {"error"}
    assert expected in answer["error"]
    assert "Traceback" not in answer["error"]
    status, _ = call(server, "/v1/models/lenet")
    assert status == 200


def test_get_on_predict_is_tf_servings_400(server):
    status, answer = call(server, "/v1/models/lenet:predict")
    assert status == 400
    assert answer == {
        "error": "Malformed request: GET /v1/models/lenet:predict"
    }


# === Library errors and reloading ===


def test_model_server_errors(tmp_path):
    from kerascnn.serving import ModelServer, ServeOptions, ServingError

    with pytest.raises(ServingError, match="not a folder"):
        ModelServer(ServeOptions(model_base_path=tmp_path / "missing"))
    (tmp_path / "lenet" / "v0.1").mkdir(parents=True)
    with pytest.raises(ServingError, match="No models to serve"):
        ModelServer(ServeOptions(model_base_path=tmp_path))
    with pytest.raises(TypeError, match="takes a `ServeOptions`"):
        ModelServer(tmp_path)  # a path where the options go
    with pytest.raises(ServingError, match="max_request_rows"):
        ModelServer(ServeOptions(model_base_path=tmp_path, max_request_rows=0))


def test_latest_policy_and_reload(lenet, tmp_path):
    import shutil

    from kerascnn.serving import ModelServer, ServeOptions, rest

    base, model_2 = lenet
    shutil.copytree(base / "lenet" / "1", tmp_path / "lenet" / "1")
    server = ModelServer(  # one model
        ServeOptions(
            model_base_path=tmp_path / "lenet", file_system_poll_wait_seconds=0
        )
    )
    assert list(server.models()) == ["lenet"]
    # Version 4 holds other weights (exported version 2).
    shutil.copytree(base / "lenet" / "2", tmp_path / "lenet" / "4")
    loaded, unloaded = server.reload()
    assert loaded == [("lenet", 4)] and unloaded == [("lenet", 1)]
    x = digits(2, seed=4) / 255.0
    result = server.predict_arrays("lenet", {"images": x.astype("float32")})
    assert result.version == 4
    np.testing.assert_allclose(
        result.outputs["probabilities"],
        np.asarray(model_2(x, training=False)),
        atol=1e-5,
    )
    status, answer = rest.handle(server, "GET", "/v1/models/lenet")
    assert status == 200
    assert answer["model_version_status"][0]["version"] == "4"
    assert rest.handle(server, "GET", "/v1/models/lenet/versions/1")[0] == 404
    server.close()


def test_loaded_models_are_frozen_out_of_the_cyclic_gc(lenet, tmp_path):
    """Loading freezes the heap; a version swap frees the old one's cycles."""
    import gc
    import shutil
    import weakref

    from kerascnn.serving import ModelServer, ServeOptions, rest

    base, _ = lenet
    gc.unfreeze()
    shutil.copytree(base / "lenet" / "1", tmp_path / "lenet" / "1")
    server = ModelServer(
        ServeOptions(
            model_base_path=tmp_path / "lenet", file_system_poll_wait_seconds=0
        )
    )
    try:
        assert gc.get_freeze_count() > 10_000  # TF's objects, not a few
        old = weakref.ref(server.get("lenet"))
        shutil.copytree(base / "lenet" / "1", tmp_path / "lenet" / "2")
        assert server.reload() == ([("lenet", 2)], [("lenet", 1)])
        assert gc.get_freeze_count() > 10_000
        assert old() is None  # unfrozen and collected, not leaked
        assert rest.handle(server, "GET", "/v1/models/lenet")[0] == 200
    finally:
        server.close()
        gc.unfreeze()
