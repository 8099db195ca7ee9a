"""TF Serving's gRPC API, driven with the `tensorflow-serving-api` stubs.

One REST server and one gRPC server share a `ModelServer` over a LeNet
and a slot tagger trained on real data (tests/serving/trained.py), both
on 127.0.0.1 with free ports. Requests are built the way a TF Serving
client builds them (`tf.make_tensor_proto`), answers are read with
`tf.make_ndarray` and compared with the REST answers for the same input.
"""

import base64
import concurrent.futures
import json
import logging
import shutil
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from tests.serving import trained

grpc = pytest.importorskip("grpc")

N_DIGITS = 8
RPC_TIMEOUT = 30


@pytest.fixture(scope="module")
def base(data_dir, tmp_path_factory):
    return trained.exported_models(data_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def servers(base):
    """`(rest server, grpc server)` sharing one `ModelServer`."""
    from kerascnn.serving import ServeOptions, make_server
    from kerascnn.serving.grpc_service import GrpcServer

    rest = make_server(
        ServeOptions(
            model_base_path=base,
            rest_api_port=0,
            file_system_poll_wait_seconds=0,
        )
    )
    rest.start()
    rpc = GrpcServer(rest.model_server, "127.0.0.1", 0).start()
    yield rest, rpc
    rpc.stop()
    rest.shutdown()
    rest.server_close()


@pytest.fixture(scope="module")
def stubs(servers):
    from tensorflow_serving.apis import (
        model_service_pb2_grpc,
        prediction_service_pb2_grpc,
    )

    channel = grpc.insecure_channel(servers[1].address)
    yield (
        prediction_service_pb2_grpc.PredictionServiceStub(channel),
        model_service_pb2_grpc.ModelServiceStub(channel),
    )
    channel.close()


@pytest.fixture(scope="module")
def digits(data_dir):
    """`(uint8 pixels, labels, PNG bytes)` of the first real test digits."""
    import tensorflow as tf

    x, y = trained.mnist_split(data_dir, "test")
    x, y = x[:N_DIGITS], y[:N_DIGITS]
    pngs = [tf.io.encode_png(d).numpy() for d in x]
    return x, y, pngs


def predict_request(name, signature_name, inputs, version=None):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = version
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def grpc_outputs(response):
    import tensorflow as tf

    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def rest(url, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=RPC_TIMEOUT) as response:
        return json.load(response)


def abort_of(call, *args):
    """`(code, details)` of an RPC that must fail."""
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, timeout=RPC_TIMEOUT)
    return caught.value.code(), caught.value.details()


# === Predict ===


@pytest.mark.parametrize(
    "signature_name", ["serving_default", "predict_pixels", "predict_images"]
)
def test_predict_real_digits_matches_rest(
    servers, stubs, digits, signature_name
):
    x, y, pngs = digits
    key, grpc_value, rest_instances = {
        "serving_default": (
            "images",
            (x / 255.0).astype(np.float32),
            (x / 255.0).astype(np.float32).tolist(),
        ),
        "predict_pixels": ("pixels", x.astype(np.float32), x.tolist()),
        "predict_images": (
            "images",
            np.array(pngs, dtype=object),
            [{"b64": base64.b64encode(p).decode()} for p in pngs],
        ),
    }[signature_name]
    response = stubs[0].Predict(
        predict_request("lenet", signature_name, {key: grpc_value}),
        timeout=RPC_TIMEOUT,
    )
    got = grpc_outputs(response)

    assert response.model_spec.name == "lenet"
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == signature_name
    np.testing.assert_array_equal(got["class_ids"], y)
    assert [c.decode() for c in got["class_names"]] == [str(v) for v in y]
    answer = rest(
        servers[0].url,
        "/v1/models/lenet:predict",
        {"signature_name": signature_name, "instances": rest_instances},
    )["predictions"]
    rest_probs = np.array([p["probabilities"] for p in answer], np.float32)
    np.testing.assert_array_equal(got["probabilities"], rest_probs)
    assert [p["class_ids"] for p in answer] == y.tolist()


def test_predict_sentences_over_grpc(servers, stubs, data_dir):
    utterance = trained.atis_split(data_dir, "test")[0]
    sentence = " ".join(utterance.words)
    response = stubs[0].Predict(
        predict_request(
            "slot_tagger",
            "predict_sentences",
            {"sentences": np.array([sentence.encode()], dtype=object)},
        ),
        timeout=RPC_TIMEOUT,
    )
    got = grpc_outputs(response)
    answer = rest(
        servers[0].url,
        "/v1/models/slot_tagger:predict",
        {"signature_name": "predict_sentences", "instances": [sentence]},
    )["predictions"][0]
    tags = [t.decode() for t in got["tags"][0][: got["lengths"][0]]]
    assert tags == answer["tags"][: answer["lengths"]]
    assert got["intent"][0].decode() == answer["intent"] == utterance.intent
    assert tags[utterance.words.index("charlotte")] == "B-fromloc.city_name"


def test_output_filter_returns_only_named_outputs(stubs, digits):
    x, y, _ = digits
    request = predict_request(
        "lenet", "predict_pixels", {"pixels": x[:2].astype(np.float32)}
    )
    request.output_filter.append("class_ids")
    response = stubs[0].Predict(request, timeout=RPC_TIMEOUT)
    assert list(response.outputs) == ["class_ids"]
    np.testing.assert_array_equal(grpc_outputs(response)["class_ids"], y[:2])


# === Status and metadata ===


def test_model_status_matches_rest(servers, stubs):
    from google.protobuf import json_format
    from tensorflow_serving.apis import get_model_status_pb2

    for name in ("lenet", "slot_tagger"):
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = name
        response = stubs[1].GetModelStatus(request, timeout=RPC_TIMEOUT)
        as_json = json_format.MessageToDict(
            response,
            always_print_fields_with_no_presence=True,
            preserving_proto_field_name=True,
        )
        assert as_json == rest(servers[0].url, f"/v1/models/{name}")
        assert response.model_version_status[0].state == (
            get_model_status_pb2.ModelVersionStatus.AVAILABLE
        )


@pytest.mark.parametrize(
    "state, code, message",
    [
        ("AVAILABLE", "OK", ""),
        ("LOADING", "NOT_FOUND", "no warm-up input"),
        ("END", "INVALID_ARGUMENT", "Cannot load SavedModel"),
    ],
)
def test_version_status_is_the_same_in_both_wire_formats(state, code, message):
    """The gRPC proto and the REST JSON are written from one `VersionState`
    (a failed version's state and error code included)."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import error_codes_pb2
    from tensorflow_serving.apis import get_model_status_pb2

    from kerascnn.serving import rest
    from kerascnn.serving.grpc_service import fill_version_status
    from kerascnn.serving.loading import VersionState

    version = VersionState(
        7, state=state, error_code=code, error_message=message
    )
    proto = get_model_status_pb2.ModelVersionStatus()
    fill_version_status(proto, version)
    assert proto.version == 7
    assert get_model_status_pb2.ModelVersionStatus.State.Name(proto.state) == (
        state
    )
    assert error_codes_pb2.Code.Name(proto.status.error_code) == code
    assert proto.status.error_message == message
    as_json = json_format.MessageToDict(
        proto,
        always_print_fields_with_no_presence=True,
        preserving_proto_field_name=True,
    )
    assert as_json == rest.version_status_json(version)


def test_model_metadata_matches_rest(servers, stubs):
    from google.protobuf import json_format
    from tensorflow.core.framework import types_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2

    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "lenet"
    request.metadata_field.append("signature_def")
    response = stubs[0].GetModelMetadata(request, timeout=RPC_TIMEOUT)
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_defs)
    expected = rest(servers[0].url, "/v1/models/lenet/metadata")
    from_rest = json_format.ParseDict(
        expected["metadata"]["signature_def"],
        get_model_metadata_pb2.SignatureDefMap(),
    )
    assert signature_defs == from_rest
    assert response.model_spec.version.value == int(
        expected["model_spec"]["version"]
    )
    defs = signature_defs.signature_def
    images = defs["predict_images"].inputs["images"]
    assert images.dtype == types_pb2.DT_STRING
    pixels = defs["predict_pixels"].inputs["pixels"]
    assert pixels.dtype == types_pb2.DT_FLOAT
    assert [d.size for d in pixels.tensor_shape.dim] == [-1, 28, 28, 1]
    assert defs["predict_pixels"].method_name == "tensorflow/serving/predict"
    assert set(signature_defs.signature_def) >= {
        "serving_default",
        "predict_images",
        "predict_pixels",
    }


# === Errors, with TF Serving's status codes ===


def test_unknown_model_and_version_are_not_found(stubs, digits):
    x = digits[0][:1].astype(np.float32)
    code, details = abort_of(
        stubs[0].Predict, predict_request("nope", "", {"pixels": x})
    )
    assert code == grpc.StatusCode.NOT_FOUND
    assert "'nope'" in details
    code, _ = abort_of(
        stubs[0].Predict,
        predict_request("lenet", "predict_pixels", {"pixels": x}, version=9),
    )
    assert code == grpc.StatusCode.NOT_FOUND


def test_wrong_dtype_is_invalid_argument(stubs, digits):
    x = digits[0][:1]
    code, details = abort_of(
        stubs[0].Predict,
        predict_request(
            "lenet", "predict_pixels", {"pixels": x.astype(np.float64)}
        ),
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details == (
        "Expects input 'pixels' to be float32 but float64 is provided."
    )


def test_bad_requests_are_invalid_argument(stubs, digits):
    from tensorflow_serving.apis import get_model_metadata_pb2

    x = digits[0][:1].astype(np.float32)
    cases = [
        predict_request("lenet", "no_such_signature", {"pixels": x}),
        predict_request("lenet", "predict_pixels", {"wrong_name": x}),
        predict_request("lenet", "predict_pixels", {"pixels": x[0, :5]}),
    ]
    for request in cases:
        code, details = abort_of(stubs[0].Predict, request)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "lenet"
    code, details = abort_of(stubs[0].GetModelMetadata, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "metadata_field" in details


def test_classify_and_regress_check_the_signature_method(stubs):
    """LeNet's signatures are predict signatures: Classify and Regress
    name the method they expected, as TF Serving does."""
    from tensorflow_serving.apis import classification_pb2, regression_pb2

    for call, request, kind, method in [
        (
            stubs[0].Classify,
            classification_pb2.ClassificationRequest(),
            "classification",
            "classify",
        ),
        (
            stubs[0].Regress,
            regression_pb2.RegressionRequest(),
            "regression",
            "regress",
        ),
    ]:
        request.model_spec.name = "lenet"
        example = request.input.example_list.examples.add()
        example.features.feature["x"].float_list.value.append(1.0)
        code, details = abort_of(call, request)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert details == (
            f"Expected {kind} signature method_name to be "
            f"tensorflow/serving/{method}. Was: tensorflow/serving/predict"
        )


def test_serving_errors_map_to_tf_serving_codes():
    from kerascnn.serving import errors
    from kerascnn.serving.grpc_status import status_code

    assert status_code(errors.BadRequest("x")) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    assert status_code(errors.NotFound("x")) == grpc.StatusCode.NOT_FOUND
    assert status_code(errors.Unavailable("x")) == grpc.StatusCode.UNAVAILABLE
    assert status_code(errors.DeadlineExceeded("x")) == (
        grpc.StatusCode.DEADLINE_EXCEEDED
    )


# === Load: gRPC and REST at once ===


def test_concurrent_grpc_and_rest_load_has_no_failure(servers, stubs, digits):
    x, y, pngs = digits
    url = servers[0].url
    per_client, clients = 12, 8  # 192 requests, bounded in time below

    def grpc_client(seed):
        wrong = 0
        for i in range(per_client):
            k = (seed + i) % N_DIGITS
            request = predict_request(
                "lenet", "predict_images", {"images": np.array([pngs[k]])}
            )
            out = grpc_outputs(stubs[0].Predict(request, timeout=RPC_TIMEOUT))
            wrong += int(out["class_ids"][0] != y[k])
        return wrong

    def rest_client(seed):
        wrong = 0
        for i in range(per_client):
            k = (seed + i) % N_DIGITS
            answer = rest(
                url,
                "/v1/models/lenet:predict",
                {
                    "signature_name": "predict_pixels",
                    "instances": [x[k].tolist()],
                },
            )
            wrong += int(answer["predictions"][0]["class_ids"] != y[k])
        return wrong

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(2 * clients) as pool:
        jobs = [pool.submit(grpc_client, s) for s in range(clients)]
        jobs += [pool.submit(rest_client, s) for s in range(clients)]
        wrong = [job.result(timeout=120) for job in jobs]
    assert wrong == [0] * (2 * clients)
    assert time.monotonic() - started < 120


# === Warm-up replay ===


def test_server_replays_warmup_records_and_first_request_is_fast(
    base, digits, tmp_path, caplog
):
    """A fresh server on a copy of the export logs its warm-up, and its
    first Predict is within 2x of the later ones, give or take 5 ms of
    scheduling noise on a shared 2-core machine: an unwarmed first
    `predict_images` call costs about 250 ms there, against 2-4 ms once
    warm, so single timings of a few ms are compared with the slowest of
    the 2nd..10th. The channel is opened with a GetModelStatus call
    first, so only the model call is timed cold."""
    from tensorflow_serving.apis import (
        get_model_status_pb2,
        model_service_pb2_grpc,
        prediction_service_pb2_grpc,
    )

    from kerascnn.serving import ServeOptions, make_server
    from kerascnn.serving.grpc_service import GrpcServer

    shutil.copytree(base / "lenet", tmp_path / "lenet")
    caplog.set_level(logging.INFO, logger="kerascnn.serving")
    rest_server = make_server(
        ServeOptions(
            model_base_path=tmp_path / "lenet",
            rest_api_port=0,
            file_system_poll_wait_seconds=0,
        )
    )
    logged = [r.getMessage() for r in caplog.records]
    assert any(
        m.startswith(
            "Replayed 13 warm-up records of lenet version 1"
        )  # 4 signatures x 3 sizes + metadata
        for m in logged
    ), logged
    rpc = GrpcServer(rest_server.model_server, "127.0.0.1", 0).start()
    channel = grpc.insecure_channel(rpc.address)
    try:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        grpc.channel_ready_future(channel).result(timeout=RPC_TIMEOUT)
        status = get_model_status_pb2.GetModelStatusRequest()
        status.model_spec.name = "lenet"
        model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
            status, timeout=RPC_TIMEOUT
        )
        x, y, pngs = digits
        times = []
        for i in range(10):
            request = predict_request(
                "lenet", "predict_images", {"images": np.array([pngs[i % 8]])}
            )
            started = time.perf_counter()
            stub.Predict(request, timeout=RPC_TIMEOUT)
            times.append(time.perf_counter() - started)
    finally:
        channel.close()
        rpc.stop()
        rest_server.server_close()
    assert times[0] <= 2 * max(times[1:]) + 0.005, times


# === The server itself and the CLI ===


def test_grpc_port_in_use_is_a_clear_error(servers):
    from kerascnn.serving import ServingError
    from kerascnn.serving.grpc_service import GrpcServer

    rest_server, rpc = servers
    with pytest.raises(ServingError, match="Cannot listen for gRPC on"):
        GrpcServer(rest_server.model_server, "127.0.0.1", rpc.port)


@pytest.mark.parametrize("ui", [True, False])
def test_cli_serves_grpc_rest_and_the_page(
    runner, tmp_path_factory, monkeypatch, ui
):
    """`kerascnn serve --port 0 --rest-api-port 0 [--no-ui]`: both APIs
    answer (gRPC on --port, REST on --rest-api-port), the page only
    without --no-ui."""
    from tensorflow_serving.apis import (
        get_model_status_pb2,
        model_service_pb2_grpc,
    )

    from cli.serve_cli import serve_command
    from kerascnn.serving import ServingHTTPServer
    from kerascnn.serving.grpc_service import GrpcServer
    from tests.serving.test_app import exported_lenet

    base, _ = exported_lenet(tmp_path_factory)
    seen = {}
    start_grpc = GrpcServer.start

    def record_grpc(self):
        seen["grpc"] = self
        return start_grpc(self)

    def serve_once(self, handle_signals=False):
        self.start()
        try:
            with urllib.request.urlopen(self.url + "/", timeout=30) as r:
                seen["page"] = r.status
        except urllib.error.HTTPError as e:
            seen["page"] = e.code
        with grpc.insecure_channel(seen["grpc"].address) as channel:
            request = get_model_status_pb2.GetModelStatusRequest()
            request.model_spec.name = "lenet"
            stub = model_service_pb2_grpc.ModelServiceStub(channel)
            seen["status"] = stub.GetModelStatus(request, timeout=30)
        self.shutdown()
        raise KeyboardInterrupt

    monkeypatch.setattr(GrpcServer, "start", record_grpc)
    monkeypatch.setattr(ServingHTTPServer, "serve_forever", serve_once)
    args = ["-m", str(base), "--port", "0", "--rest-api-port", "0"]
    args += ["--file-system-poll-wait-seconds", "0"]
    result = runner.invoke(serve_command, args + ([] if ui else ["--no-ui"]))

    assert result.exit_code == 0, result.output
    assert f"gRPC (TF Serving's API) on {seen['grpc'].address}" in (
        result.output
    )
    assert ("Try-it page on http://127.0.0.1:" in result.output) == ui
    assert seen["page"] == (200 if ui else 404)
    assert [s.version for s in seen["status"].model_version_status] == [2]
