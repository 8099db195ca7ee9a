"""`kerascnn serve` judged by TF Serving's own model-server tests.

The model is TF Serving's test model, built the way TF Serving builds it
(`tests/serving/half_plus_two.py`: a TF1 graph, predict/classify/regress
signatures, version folder `00000123`). Each test mirrors an assertion
of TF Serving's `tensorflow_model_server_test.py` (REST and gRPC) or of
its REST handler tests; the expected values are theirs: `y = 0.5 x + 2`.
"""

import json
import os
import shutil
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest

from kerascnn.serving import (
    ModelServer,
    ServeOptions,
    ServingError,
    make_server,
    rest,
)
from kerascnn.serving.grpc_service import GrpcServer
from tests.serving.half_plus_two import VERSION, write_half_plus_two


def _options(base, name="default", **changes):
    """Serve `base` (a folder of versions) as `name`; REST on any port."""
    return ServeOptions(
        model_base_path=base,
        model_name=name,
        file_system_poll_wait_seconds=0,
        rest_api_port=0,
        **changes,
    )


def _config_options(config, **changes):
    """Serve TF Serving's model config file `config`; REST on any port."""
    return ServeOptions(
        model_config_file=str(config),
        file_system_poll_wait_seconds=0,
        rest_api_port=0,
        **changes,
    )


# === Fixtures ===


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("half_plus_two")
    write_half_plus_two(base)
    os.makedirs(base / "not_a_version")  # ignored, as in TF Serving
    return base


@pytest.fixture(scope="module")
def servers(model_dir):
    """REST and gRPC on one `ModelServer`, TF Serving's name `default`."""
    model_server = ModelServer(_options(model_dir))
    http = make_server(model_server.options, model_server=model_server).start()
    grpc_server = GrpcServer(model_server, "127.0.0.1", 0).start()
    yield http, grpc_server
    grpc_server.stop(0)
    http.shutdown()
    http.server_close()


def call_rest(url, body=None, method=None):
    """`(status, JSON answer)` like TF Serving's `CallREST`."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def stub(servers):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    channel = grpc.insecure_channel(servers[1].address)
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


# === REST, as testPredictREST, testClassifyREST, ... ===


def test_version_folder_with_leading_zeros_is_version_123(servers):
    status, answer = call_rest(servers[0].url + "/v1/models/default")
    assert status == 200
    assert answer == {
        "model_version_status": [
            {
                "version": str(VERSION),
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"instances": [2.0, 3.0, 4.0]}, {"predictions": [3.0, 3.5, 4.0]}),
        ({"inputs": [2.0, 3.0, 4.0]}, {"outputs": [3.0, 3.5, 4.0]}),
        ({"instances": [[2.0], [3.0]]}, {"predictions": [[3.0], [3.5]]}),
    ],
)
def test_predict_rest_takes_looser_shapes(servers, body, expected):
    url = servers[0].url + "/v1/models/default:predict"
    assert call_rest(url, body) == (200, expected)


def test_classify_rest(servers):
    url = servers[0].url + "/v1/models/default:classify"
    body = {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}
    assert call_rest(url, body) == (200, {"results": [[["", 3.0]]]})


def test_regress_rest_with_context(servers):
    url = servers[0].url + "/v1/models/default/versions/123:regress"
    body = {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}
    assert call_rest(url, body) == (200, {"results": [3.0]})
    body = {
        "signature_name": "regress_x_to_y2",
        "context": {"x": 1.0},
        "examples": [{"x2": 5.0}, {"x": 4.0}],
    }
    # The context's x reaches the first example; the second's own x wins.
    assert call_rest(url, body) == (200, {"results": [3.5, 5.0]})


@pytest.mark.parametrize(
    "body, text",
    [
        ({"signature_name": "regress_x_to_y"}, "key 'examples' is expected"),
        ({"signature_name": "regress_x_to_y", "examples": []}, "empty array"),
        (
            {"signature_name": "regress_x_to_y", "examples": [{"x": [1, 2.5]}]},
            "Unexpected element type in feature: x expecting type: int64",
        ),
        (
            {"examples": [{"x": 2.0}]},
            "Expected regression signature method_name to be "
            "tensorflow/serving/regress. Was: tensorflow/serving/predict",
        ),
        (
            {"signature_name": "regress_x2_to_y3", "examples": [{"x2": 1.0}]},
            "cannot take serialized tf.Examples",
        ),
        (
            {"signature_name": "regress_x_to_y", "examples": [{"x": "a"}]},
            "rejected the input",
        ),
    ],
)
def test_regress_rest_errors_are_400(servers, body, text):
    url = servers[0].url + "/v1/models/default:regress"
    status, answer = call_rest(url, body)
    assert status == 400 and set(answer) == {"error"}
    assert text in answer["error"]


def test_metadata_rest_is_tf_servings_json(servers):
    status, answer = call_rest(servers[0].url + "/v1/models/default/metadata")
    assert status == 200
    assert set(answer) == {"model_spec", "metadata"}
    assert answer["model_spec"] == {
        "name": "default",
        "signature_name": "",
        "version": "123",
    }
    defs = answer["metadata"]["signature_def"]["signature_def"]
    assert set(defs) == {
        "serving_default",
        "classify_x_to_y",
        "regress_x_to_y",
        "regress_x_to_y2",
        "regress_x2_to_y3",
    }
    rank2 = {
        "dim": [{"size": "-1", "name": ""}, {"size": "1", "name": ""}],
        "unknown_rank": False,
    }
    assert defs["serving_default"] == {
        "inputs": {
            "x": {"dtype": "DT_FLOAT", "tensor_shape": rank2, "name": "x:0"}
        },
        "outputs": {
            "y": {"dtype": "DT_FLOAT", "tensor_shape": rank2, "name": "y:0"}
        },
        "method_name": "tensorflow/serving/predict",
        "defaults": {},
    }
    assert defs["classify_x_to_y"] == {
        "inputs": {
            "inputs": {
                "dtype": "DT_STRING",
                "tensor_shape": {"dim": [], "unknown_rank": True},
                "name": "tf_example:0",
            }
        },
        "outputs": {
            "scores": {
                "dtype": "DT_FLOAT",
                "tensor_shape": rank2,
                "name": "y:0",
            }
        },
        "method_name": "tensorflow/serving/classify",
        "defaults": {},
    }
    methods = {k: d["method_name"].rsplit("/", 1)[1] for k, d in defs.items()}
    assert methods["regress_x2_to_y3"] == "regress"


@pytest.mark.parametrize(
    "method, path, text",
    [
        ("GET", "/v1/models/default:predict", "Malformed request: GET"),
        ("POST", "/v1/models/default", "Malformed request: POST"),
        ("POST", "/v1/models/default:explain", "Malformed request: POST"),
        ("GET", "/v1/models/default/versions/abc", "Malformed request"),
        ("GET", "/v1/models/default/", "Malformed request"),
        ("GET", "/v1/foo", "Malformed request: GET /v1/foo"),
        ("PUT", "/v1/models/default", "Malformed request: PUT"),
        ("GET", "/v1/models", "Missing model name in request."),
        (
            "GET",
            "/v1/models/default/versions/99999999999999999999",
            "Failed to convert version",
        ),
    ],
)
def test_malformed_paths_are_400_error_json(servers, method, path, text):
    body = {} if method in ("POST", "PUT") else None
    status, answer = call_rest(servers[0].url + path, body, method=method)
    assert status == 400 and set(answer) == {"error"}
    assert text in answer["error"]


def test_unknown_model_and_version_are_404(servers):
    url = servers[0].url
    assert call_rest(url + "/v1/models/nope")[0] == 404
    assert call_rest(url + "/v1/models/default/versions/7")[0] == 404


# === gRPC, as VerifyPredictRequest, testClassify, testRegress, ... ===


def _verify_predict(servers, specify_output, batch_input):
    from tensorflow.core.framework import types_pb2
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "serving_default"
    request.inputs["x"].dtype = types_pb2.DT_FLOAT
    request.inputs["x"].float_val.append(2.0)
    request.inputs["x"].tensor_shape.dim.add().size = 1
    if batch_input:
        request.inputs["x"].tensor_shape.dim.add().size = 1
    if specify_output:
        request.output_filter.append("y")
    result = stub(servers).Predict(request, 5.0)
    assert "y" in result.outputs
    assert result.outputs["y"].dtype == types_pb2.DT_FLOAT
    assert list(result.outputs["y"].float_val) == [3.0]
    assert result.outputs["y"].tensor_content == b""
    assert result.model_spec.name == "default"
    assert result.model_spec.signature_name == "serving_default"
    assert result.model_spec.version.value == VERSION


@pytest.mark.parametrize("specify_output", [True, False])
@pytest.mark.parametrize("batch_input", [False, True])
def test_grpc_predict_fills_float_val(servers, specify_output, batch_input):
    _verify_predict(servers, specify_output, batch_input)


def _example_input(request):
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.extend([2.0])


def test_grpc_classify(servers):
    from tensorflow_serving.apis import classification_pb2

    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "classify_x_to_y"
    _example_input(request)
    result = stub(servers).Classify(request, 5.0)
    assert len(result.result.classifications) == 1
    assert len(result.result.classifications[0].classes) == 1
    assert result.result.classifications[0].classes[0].score == 3.0
    assert result.model_spec.signature_name == "classify_x_to_y"
    assert result.model_spec.version.value == VERSION


def test_grpc_regress(servers):
    from tensorflow_serving.apis import regression_pb2

    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "default"
    request.model_spec.signature_name = "regress_x_to_y"
    _example_input(request)
    result = stub(servers).Regress(request, 5.0)
    assert [r.value for r in result.result.regressions] == [3.0]
    assert result.model_spec.version.value == VERSION


def test_grpc_multi_inference(servers):
    from tensorflow_serving.apis import inference_pb2

    request = inference_pb2.MultiInferenceRequest()
    request.tasks.add().model_spec.name = "default"
    request.tasks[0].model_spec.signature_name = "regress_x_to_y"
    request.tasks[0].method_name = "tensorflow/serving/regress"
    request.tasks.add().model_spec.name = "default"
    request.tasks[1].model_spec.signature_name = "classify_x_to_y"
    request.tasks[1].method_name = "tensorflow/serving/classify"
    _example_input(request)
    result = stub(servers).MultiInference(request, 5.0)
    assert len(result.results) == 2
    assert result.results[0].regression_result.regressions[0].value == 3.0
    classes = result.results[1].classification_result.classifications[0]
    assert classes.classes[0].score == 3.0
    for i in range(2):
        spec = result.results[i].model_spec
        assert spec.name == "default" and spec.version.value == VERSION
        assert spec.signature_name == request.tasks[i].model_spec.signature_name


def test_grpc_multi_inference_refuses_duplicate_signatures(servers):
    from tensorflow_serving.apis import inference_pb2

    request = inference_pb2.MultiInferenceRequest()
    for _ in range(2):
        task = request.tasks.add()
        task.model_spec.name = "default"
        task.model_spec.signature_name = "regress_x_to_y"
        task.method_name = "tensorflow/serving/regress"
    _example_input(request)
    with pytest.raises(grpc.RpcError) as error:
        stub(servers).MultiInference(request, 5.0)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Duplicate evaluation of signature" in error.value.details()


def test_grpc_status_and_metadata(servers):
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        get_model_status_pb2,
        model_service_pb2_grpc,
    )

    channel = grpc.insecure_channel(servers[1].address)
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "default"
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
        status_request, 5.0
    )
    assert len(status.model_version_status) == 1
    assert status.model_version_status[0].version == VERSION
    assert status.model_version_status[0].status.error_code == 0
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "default"
    request.metadata_field.append("signature_def")
    response = stub(servers).GetModelMetadata(request, 5.0)
    defs = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(defs)
    assert defs.signature_def["serving_default"].inputs["x"].name == "x:0"
    assert (
        defs.signature_def["classify_x_to_y"].method_name
        == "tensorflow/serving/classify"
    )


def test_tensor_content_only_behind_the_flag(model_dir):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    with ModelServer(_options(model_dir)) as ms:
        server = GrpcServer(
            ms, "127.0.0.1", 0, serialize_as_tensor_content=True
        ).start()
        try:
            channel = grpc.insecure_channel(server.address)
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "default"
            request.inputs["x"].CopyFrom(
                tf.make_tensor_proto(np.array([[2.0], [4.0]], np.float32))
            )
            response = prediction_service_pb2_grpc.PredictionServiceStub(
                channel
            ).Predict(request, 10.0)
        finally:
            server.stop(0)
    y = response.outputs["y"]
    assert list(y.float_val) == [] and len(y.tensor_content) == 8
    np.testing.assert_array_equal(tf.make_ndarray(y), [[3.0], [4.0]])


# === Version labels ===


def _config_file(tmp_path, base, labels):
    lines = "".join(
        f'    version_labels {{ key: "{k}" value: {v} }}\n'
        for k, v in labels.items()
    )
    path = tmp_path / "models.config"
    path.write_text(
        "model_config_list {\n  config {\n"
        f'    name: "hp2"\n    base_path: "{base}"\n'
        '    model_platform: "tensorflow"\n'
        "    model_version_policy { specific { versions: 123 versions: 124 }"
        " }\n" + lines + "  }\n}\n"
    )
    return str(path)


def test_version_labels_over_rest_and_grpc(model_dir, tmp_path):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    base = tmp_path / "hp2"
    shutil.copytree(model_dir / "00000123", base / "00000123")
    shutil.copytree(model_dir / "00000123", base / "124")
    config = _config_file(tmp_path, base, {"stable": 123, "canary": 124})
    ms = ModelServer(_config_options(config))
    http = make_server(ms.options, model_server=ms).start()
    grpc_server = GrpcServer(ms, "127.0.0.1", 0).start()
    try:
        url = http.url + "/v1/models/hp2/labels/"
        status, answer = call_rest(url + "stable")
        assert answer["model_version_status"][0]["version"] == "123"
        status, answer = call_rest(url + "canary/metadata")
        assert answer["model_spec"]["version"] == "124"
        status, answer = call_rest(url + "canary:predict", {"instances": [2.0]})
        assert (status, answer) == (200, {"predictions": [3.0]})
        status, answer = call_rest(url + "nope")
        assert status == 400
        assert "Unrecognized servable version label: nope" in answer["error"]
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "hp2"
        request.model_spec.version_label = "stable"
        request.inputs["x"].CopyFrom(tf.make_tensor_proto([2.0]))
        response = stub((http, grpc_server)).Predict(request, 10.0)
        assert response.model_spec.version.value == 123
    finally:
        grpc_server.stop(0)
        http.shutdown()
        http.server_close()


def test_label_on_an_unloaded_version_needs_the_opt_in(model_dir, tmp_path):
    base = tmp_path / "hp2"
    shutil.copytree(model_dir / "00000123", base / "00000123")
    config = _config_file(tmp_path, base, {"canary": 124})
    with pytest.raises(ServingError, match="not currently available"):
        ModelServer(_config_options(config))
    with ModelServer(
        _config_options(
            config, allow_version_labels_for_unavailable_models=True
        )
    ) as ms:
        path = "/v1/models/hp2/labels/canary"
        assert rest.handle(ms, "GET", path)[0] == 404
        shutil.copytree(model_dir / "00000123", base / "124")
        ms.reload()
        status, answer = rest.handle(ms, "GET", path)
        assert status == 200
        assert answer["model_version_status"][0]["version"] == "124"


# === TF2 SavedModels, as test_tf_saved_model_save* ===


def _grpc_predict_x(model_server, signature_name=""):
    from tensorflow.core.framework import types_pb2
    from tensorflow_serving.apis import predict_pb2

    server = GrpcServer(model_server, "127.0.0.1", 0).start()
    try:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "default"
        request.model_spec.signature_name = signature_name
        request.inputs["x"].dtype = types_pb2.DT_FLOAT
        request.inputs["x"].float_val.append(2.0)
        request.inputs["x"].tensor_shape.dim.add().size = 1
        channel = grpc.insecure_channel(server.address)
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        return prediction_service_pb2_grpc.PredictionServiceStub(
            channel
        ).Predict(request, 10.0)
    finally:
        server.stop(0)


def test_tf2_saved_model_with_unknown_rank_input(tmp_path):
    import tensorflow as tf

    root = tf.train.Checkpoint()
    root.v1, root.v2 = tf.Variable(3.0), tf.Variable(2.0)
    root.f = tf.function(lambda x: {"y": root.v1 * root.v2 * x})
    function = root.f.get_concrete_function(tf.TensorSpec(None, tf.float32))
    tf.saved_model.save(root, str(tmp_path / "00000123"), function)
    with ModelServer(_options(tmp_path)) as ms:
        result = _grpc_predict_x(ms)
        assert list(result.outputs["y"].float_val) == [12.0]
        assert result.model_spec.version.value == 123
        status, answer = rest.handle(ms, "GET", "/v1/models/default/metadata")
        x = answer["metadata"]["signature_def"]["signature_def"][
            "serving_default"
        ]["inputs"]["x"]
        assert x["tensor_shape"] == {"dim": [], "unknown_rank": True}
        assert x["name"] == "serving_default_x:0"


def test_tf2_saved_model_with_two_signatures(tmp_path):
    import tensorflow as tf

    root = tf.train.Checkpoint()
    spec = [tf.TensorSpec(None, tf.float32)]
    root.f = tf.function(lambda x: {"y": 1.0 + 0 * x}, input_signature=spec)
    root.g = tf.function(lambda x: {"y": 2.0 + 0 * x}, input_signature=spec)
    tf.saved_model.save(
        root,
        str(tmp_path / "00000123"),
        signatures={"serving_default": root.f, "custom_signature_key": root.g},
    )
    with ModelServer(_options(tmp_path)) as ms:
        custom = _grpc_predict_x(ms, "custom_signature_key")
        assert list(custom.outputs["y"].float_val) == [2.0]
        assert list(_grpc_predict_x(ms).outputs["y"].float_val) == [1.0]


def test_tf2_function_refuses_shapes_it_was_not_traced_for(tmp_path):
    """A TF2 function's declared shapes hold (running it on others can
    abort the process in a kernel): a clear 400, and the server lives."""
    import tensorflow as tf

    root = tf.train.Checkpoint()
    root.f = tf.function(
        lambda x: {"y": tf.reduce_sum(x, axis=-1)},
        input_signature=[tf.TensorSpec((None, 2), tf.float32)],
    )
    tf.saved_model.save(root, str(tmp_path / "1"), root.f)
    with ModelServer(_options(tmp_path, "m")) as ms:
        status, answer = rest.handle(
            ms, "POST", "/v1/models/m:predict", b'{"instances": [1.0, 2.0]}'
        )
        assert status == 400
        assert (
            "input 'x' expects shape (-1, 2); received (2,)"
            in (answer["error"])
        )
        status, answer = rest.handle(
            ms, "POST", "/v1/models/m:predict", b'{"instances": [[1.0, 2.0]]}'
        )
        assert (status, answer) == (200, {"predictions": [3.0]})


def test_label_errors_follow_tf_serving(servers):
    url = servers[0].url
    status, answer = call_rest(url + "/v1/models/nope/labels/stable")
    assert status == 404
    status, answer = call_rest(url + "/v1/models/default/labels/stable")
    assert status == 400
    assert "Unrecognized servable version label: stable" in answer["error"]


# === As http_rest_api_handler_test.cc ===


@pytest.mark.parametrize(
    "path, body, expected",
    [
        (":predict", {"instances": [[1.0, 2.0], [3.0, 4.0]]}, None),
        (
            "/versions/123:predict",
            {"signature_name": "serving_default", "inputs": [3.0, 4.0]},
            {"outputs": [3.5, 4.0]},
        ),
        (
            ":regress",
            {"signature_name": "regress_x_to_y", "examples": [{"x": 80.0}]},
            {"results": [42]},
        ),
        (
            ":classify",
            {"signature_name": "classify_x_to_y", "examples": [{"x": 20.0}]},
            {"results": [[["", 12]]]},
        ),
    ],
)
def test_rest_handler_answers(servers, path, body, expected):
    expected = expected or {"predictions": [[2.5, 3.0], [3.5, 4.0]]}
    url = servers[0].url + "/v1/models/default" + path
    assert call_rest(url, body) == (200, expected)


@pytest.mark.parametrize(
    "raw, text",
    [
        (b"", "JSON Parse error: The document is empty"),
        (b"instances = [1, 2]", "JSON Parse error: Invalid value"),
        (b'{ "instances": ["x", "y"] }', "not of expected type: float"),
        (
            b'{ "signature_name": 100 }',
            "'signature_name' key must be a string value.",
        ),
    ],
)
def test_rest_handler_request_errors(servers, raw, text):
    request = urllib.request.Request(
        servers[0].url + "/v1/models/default:predict", raw, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=30)
    assert error.value.code == 400
    assert text in json.loads(error.value.read())["error"]


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/v1/foo"),
        ("POST", "/v1/foo"),
        ("GET", "/v1/models/debug/model_name"),
        ("POST", "/v1/models"),
        ("GET", "/v1/models/foo/version/50:predict"),
        ("POST", "/v1/models/foo/version/50:regress"),
        ("POST", "/v1/models/foo/versions/HELLO:regress"),
        ("POST", "/v1/models/foo/metadata"),
        ("POST", "/v1/models/foo/label/some_label:regress"),
        ("POST", "/v1/models/foo/versions/50/labels/some_label:regress"),
        ("POST", "/v1/models/foo/versions/some_label:regress"),
    ],
)
def test_rest_handler_unsupported_api_calls(servers, method, path):
    body = {} if method == "POST" else None
    status, answer = call_rest(servers[0].url + path, body, method=method)
    assert status == 400 and "Malformed request" in answer["error"]


def test_rest_handler_version_beyond_uint64_and_unknown_models(servers):
    url = servers[0].url + "/v1/models/"
    status, answer = call_rest(
        url + f"foo/versions/{2**64 - 1}:regress", {"examples": [{"x": 1.0}]}
    )
    assert status == 400 and "Failed to convert version" in answer["error"]
    for path in ("foo:predict", "foo/versions/50:predict"):
        assert call_rest(url + path, {"instances": [1]})[0] == 404


def test_keras_sequential_export(tmp_path):
    """As test_sequential_keras_saved_model_save: x of shape (1,), batched
    gRPC input [[2.0]]; Keras 3 names the output `output_0`."""
    import keras
    from tensorflow.core.framework import types_pb2
    from tensorflow_serving.apis import predict_pb2

    model = keras.Sequential(
        [
            keras.Input(shape=(1,), name="x"),
            keras.layers.Dense(1, kernel_initializer="ones", name="y"),
        ]
    )
    model.export(str(tmp_path / "00000123"), verbose=False)
    with ModelServer(_options(tmp_path)) as ms:
        server = GrpcServer(ms, "127.0.0.1", 0).start()
        try:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "default"
            request.inputs["x"].dtype = types_pb2.DT_FLOAT
            request.inputs["x"].float_val.append(2.0)
            request.inputs["x"].tensor_shape.dim.add().size = 1
            request.inputs["x"].tensor_shape.dim.add().size = 1
            result = stub((None, server)).Predict(request, 10.0)
        finally:
            server.stop(0)
    assert list(result.outputs["output_0"].float_val) == [2.0]
    assert result.model_spec.version.value == 123
