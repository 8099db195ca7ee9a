"""What TF Serving's users ask for: probes, CORS, message size, metrics by
API, the pad value of batching, kerascnn's metadata for the try-it page.

Run on TF Serving's half-plus-two test model (tests/serving/half_plus_two.py)
unless a test needs a kerascnn export.
"""

import json
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest

from kerascnn.serving import (
    BatchingParameters,
    ModelServer,
    ServeOptions,
    make_server,
)
from kerascnn.serving.batching import merge_feeds, split_outputs
from kerascnn.serving.grpc_service import GrpcServer
from tests.serving.half_plus_two import write_half_plus_two


def _options(base, name="default", **changes):
    """Serve `base` (a folder of versions) as `name`; REST on any port."""
    return ServeOptions(
        model_base_path=base,
        model_name=name,
        file_system_poll_wait_seconds=0,
        rest_api_port=0,
        **changes,
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("hp2_ops")
    write_half_plus_two(base)
    return base


@pytest.fixture(scope="module")
def http(model_dir):
    options = _options(
        model_dir,
        max_request_rows=2_000_000,  # the 6 MB gRPC request below
        cors_allowed_origins="https://app.example",
    )
    server = make_server(options).start()
    yield server
    server.shutdown()
    server.server_close()


def fetch(url, method="GET", body=None, headers=None):
    """`(status, headers, body bytes)`."""
    request = urllib.request.Request(
        url, data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


# === Kubernetes probes ===


def test_liveness_and_readiness(http):
    status, _, body = fetch(http.url + "/healthz")
    assert status == 200 and json.loads(body) == {"status": "alive"}
    status, _, body = fetch(http.url + "/readyz")
    assert status == 200
    assert json.loads(body) == {"ready": True, "models": {"default": [123]}}


def test_not_ready_while_a_configured_model_has_no_version(model_dir, tmp_path):
    (tmp_path / "empty" / "7").mkdir(parents=True)  # no saved_model.pb yet
    config = tmp_path / "models.config"
    config.write_text(
        "model_config_list {\n"
        f'  config {{ name: "hp2" base_path: "{model_dir}" }}\n'
        f'  config {{ name: "later" base_path: "{tmp_path / "empty"}" }}\n'
        "}\n"
    )
    options = ServeOptions(
        model_config_file=str(config),
        file_system_poll_wait_seconds=0,
        rest_api_port=0,
    )
    with ModelServer(options) as ms:
        ready, models = ms.ready()
        assert not ready and models == {"hp2": [123], "later": []}
        server = make_server(options, model_server=ms).start()
        try:
            status, _, body = fetch(server.url + "/readyz")
        finally:
            server.shutdown()
            server.server_close()
        assert status == 503 and json.loads(body)["ready"] is False


# === CORS ===


def test_cors_headers_only_for_allowed_origins(http):
    url = http.url + "/v1/models/default:predict"
    body = b'{"instances": [2.0]}'
    status, headers, _ = fetch(
        url, "POST", body, {"Origin": "https://app.example"}
    )
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "https://app.example"
    status, headers, _ = fetch(url, "POST", body, {"Origin": "https://evil"})
    assert status == 200 and "Access-Control-Allow-Origin" not in headers
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
    }
    status, headers, _ = fetch(url, "OPTIONS", headers=preflight)
    assert status == 204
    assert headers["Access-Control-Allow-Methods"] == "POST, GET"
    assert "Content-Type" in headers["Access-Control-Allow-Headers"]


def test_cors_is_off_by_default(model_dir):
    with ModelServer(_options(model_dir)) as ms:
        server = make_server(ms.options, model_server=ms).start()
        try:
            status, headers, _ = fetch(
                server.url + "/v1/models/default",
                headers={"Origin": "https://app.example"},
            )
            preflight = {
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
            }
            options = fetch(
                server.url + "/v1/models/default:predict",
                "OPTIONS",
                headers=preflight,
            )
        finally:
            server.shutdown()
            server.server_close()
    assert status == 200 and "Access-Control-Allow-Origin" not in headers
    assert options[0] == 400  # TF Serving's Malformed request


# === gRPC message size and metrics ===


def _predict(address, values):
    import tensorflow as tf
    from tensorflow_serving.apis import (
        predict_pb2,
        prediction_service_pb2_grpc,
    )

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "default"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(values))
    channel = grpc.insecure_channel(
        address,
        options=[
            ("grpc.max_send_message_length", 64 << 20),
            ("grpc.max_receive_message_length", 64 << 20),
        ],
    )
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    return stub.Predict(request, 60.0)


def test_grpc_message_size_is_settable(http):
    values = np.ones((1_500_000, 1), np.float32)  # 6 MB, over gRPC's 4 MB
    model_server = http.model_server
    big = GrpcServer(model_server, "127.0.0.1", 0).start()
    small = GrpcServer(
        model_server, "127.0.0.1", 0, max_message_bytes=1 << 20
    ).start()
    try:
        answer = _predict(big.address, values)
        assert len(answer.outputs["y"].float_val) == len(values)
        with pytest.raises(grpc.RpcError) as error:
            _predict(small.address, values)
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        big.stop(0)
        small.stop(0)


def test_metrics_count_grpc_and_rest_by_api(http):
    server = GrpcServer(http.model_server, "127.0.0.1", 0).start()
    try:
        _predict(server.address, np.array([[2.0]], np.float32))
    finally:
        server.stop(0)
    fetch(
        http.url + "/v1/models/default:regress",
        "POST",
        b'{"signature_name": "regress_x_to_y", "examples": [{"x": 1.0}]}',
    )
    _, _, text = fetch(http.url + "/monitoring/prometheus/metrics")
    lines = text.decode().splitlines()

    def count(**labels):
        for line in lines:
            if line.startswith("kerascnn_serving_requests_total{") and all(
                f'{k}="{v}"' in line for k, v in labels.items()
            ):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    assert count(api="predict", protocol="grpc", code="200") >= 1
    assert count(api="regress", protocol="rest", code="200") >= 1


# === Padding when batching ===


def test_padding_uses_the_pad_value_and_outputs_are_trimmed():
    feeds = [
        {"ids": np.array([[5, 6, 7]], np.int32)},
        {"ids": np.array([[8]], np.int32)},
    ]
    merged, sizes = merge_feeds(feeds, pad=True, pad_value=-1)
    np.testing.assert_array_equal(merged["ids"], [[5, 6, 7], [8, -1, -1]])
    assert sizes == [1, 1]

    class Task:
        def __init__(self, feeds):
            self.feeds, self.rows = feeds, 1

    parts = split_outputs(
        {"tags": merged["ids"] * 10}, [Task(f) for f in feeds], merged
    )
    np.testing.assert_array_equal(parts[1]["tags"], [[80]])


def test_pad_value_reaches_the_batching_parameters(tmp_path):
    from kerascnn.serving import read_batching_parameters

    path = tmp_path / "batching.txt"
    path.write_text("pad_variable_length_inputs { value: true }\n")
    params = read_batching_parameters(str(path), pad_value=3)
    assert params.pad_variable_length_inputs and params.pad_value == 3
    assert BatchingParameters().pad_value == 0


# === The try-it page's metadata route ===


def test_kerascnn_metadata_has_its_own_route(model_dir):
    from kerascnn.serving.ui import routes

    with ModelServer(_options(model_dir)) as ms:
        server = make_server(
            ms.options, model_server=ms, extra_routes=routes()
        ).start()
        try:
            base = server.url + "/ui/models/default/versions/"
            ok = fetch(base + "123/kerascnn_metadata")
            missing = fetch(base + "9/kerascnn_metadata")
        finally:
            server.shutdown()
            server.server_close()
    # TF Serving's test model has no kerascnn metadata: an empty object.
    assert ok[0] == 200 and json.loads(ok[2]) == {}
    assert missing[0] == 404


# === One input name in every format ===


def test_tflite_input_is_named_images_like_the_saved_model():
    from ai_edge_litert.interpreter import Interpreter

    from kerascnn import models
    from kerascnn.export import tflite

    model = models.build("lenet", input_shape=(28, 28, 1), num_classes=10)
    interpreter = Interpreter(model_content=tflite.convert(model))
    runner = interpreter.get_signature_runner()
    assert list(runner.get_input_details()) == ["images"]
    out = runner(images=np.zeros((1, 28, 28, 1), np.float32))
    assert out["probabilities"].shape == (1, 10)
