"""The Open Inference Protocol (KServe v2), judged by Triton's own clients.

One REST and one gRPC server share a `ModelServer` over a LeNet and a
slot tagger trained on real data (tests/serving/trained.py), on
127.0.0.1 with free ports. `tritonclient.http` (JSON and binary tensors)
and `tritonclient.grpc` (`raw_input_contents`) talk to them exactly as
they talk to Triton; answers are checked against the real labels and
against TF Serving's API on the same server.
"""

import json
import struct
import urllib.error
import urllib.request

import numpy as np
import pytest

from tests.serving import trained

httpclient = pytest.importorskip("tritonclient.http")
grpcclient = pytest.importorskip("tritonclient.grpc")
from tritonclient.utils import InferenceServerException  # noqa: E402

N_DIGITS = 8
TIMEOUT = 30


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
def http(servers):
    host, port = servers[0].server_address
    client = httpclient.InferenceServerClient(
        f"{host}:{port}", network_timeout=TIMEOUT
    )
    yield client
    client.close()


@pytest.fixture(scope="module")
def grpc(servers):
    client = grpcclient.InferenceServerClient(servers[1].address)
    yield client
    client.close()


@pytest.fixture(scope="module")
def digits(data_dir):
    """`(float32 images in [0, 1], int64 labels, PNG bytes)`: real test
    digits."""
    import tensorflow as tf

    x, y = trained.mnist_split(data_dir, "test")
    x, y = x[:N_DIGITS], y[:N_DIGITS]
    pngs = [tf.io.encode_png(d).numpy() for d in x]
    return (x / 255.0).astype(np.float32), y, pngs


def post(url, path, body, headers=None):
    """`(status, headers, body bytes)` of a raw POST."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method="POST")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def get(url, path):
    try:
        with urllib.request.urlopen(url + path, timeout=TIMEOUT) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def v1_predictions(url, signature_name, instances):
    status, _, body = post(
        url,
        "/v1/models/lenet:predict",
        {"signature_name": signature_name, "instances": instances},
    )
    assert status == 200, body
    return json.loads(body)["predictions"]


def text(value):
    return value.decode() if isinstance(value, bytes) else value


def infer_input(module, name, array, datatype, binary=True):
    tensor = module.InferInput(name, list(array.shape), datatype)
    if module is httpclient:
        tensor.set_data_from_numpy(array, binary_data=binary)
    else:
        tensor.set_data_from_numpy(array)
    return tensor


# === Inference: the right digits, unchanged client code ===


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_http_gets_the_right_digits_and_v1s_numbers(
    servers, http, digits, binary
):
    x, y, _ = digits
    images = infer_input(httpclient, "images", x, "FP32", binary)
    outputs = [
        httpclient.InferRequestedOutput(n, binary_data=binary)
        for n in ("probabilities", "class_ids", "class_names")
    ]

    result = http.infer("lenet", [images], outputs=outputs)

    np.testing.assert_array_equal(result.as_numpy("class_ids"), y)
    # tritonclient gives bytes for binary BYTES and str for JSON ones.
    names = [text(n) for n in result.as_numpy("class_names")]
    assert names == [str(v) for v in y]
    v1 = v1_predictions(servers[0].url, "serving_default", x.tolist())
    np.testing.assert_array_equal(
        result.as_numpy("probabilities"),
        np.array([p["probabilities"] for p in v1], np.float32),
    )
    answer = result.get_response()
    assert answer["model_name"] == "lenet"
    assert answer["model_version"] == "1"
    assert [o["datatype"] for o in answer["outputs"]] == [
        "FP32",
        "INT64",
        "BYTES",
    ]
    assert all(("data" in o) != binary for o in answer["outputs"])


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_http_compressed_requests(http, digits, algorithm):
    """tritonclient's request compression: the header length counts the
    JSON before compression, so the body is read decompressed."""
    x, y, _ = digits

    result = http.infer(
        "lenet",
        [infer_input(httpclient, "images", x, "FP32")],
        request_compression_algorithm=algorithm,
        response_compression_algorithm=algorithm,
    )

    np.testing.assert_array_equal(result.as_numpy("class_ids"), y)


def test_grpc_raw_contents_get_the_right_digits(http, grpc, digits):
    x, y, _ = digits

    result = grpc.infer(
        "lenet",
        [infer_input(grpcclient, "images", x, "FP32")],
        model_version="1",
        request_id="r7",
    )

    np.testing.assert_array_equal(result.as_numpy("class_ids"), y)
    response = result.get_response()
    assert response.id == "r7"
    assert response.model_version == "1"
    assert len(response.raw_output_contents) == 3
    over_http = http.infer(
        "lenet", [infer_input(httpclient, "images", x, "FP32")]
    )
    np.testing.assert_array_equal(
        result.as_numpy("probabilities"), over_http.as_numpy("probabilities")
    )


def test_grpc_typed_contents_are_accepted(servers, digits):
    import grpc as grpc_lib

    from kerascnn.serving.v2 import inference_pb

    x, y, _ = digits
    request = inference_pb.ModelInferRequest(model_name="lenet")
    tensor = request.inputs.add(
        name="images", datatype="FP32", shape=list(x.shape)
    )
    tensor.contents.fp32_contents.extend(x.reshape(-1).tolist())
    with grpc_lib.insecure_channel(servers[1].address) as channel:
        call = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=inference_pb.ModelInferRequest.SerializeToString,
            response_deserializer=inference_pb.ModelInferResponse.FromString,
        )
        response = call(request, timeout=TIMEOUT)
    names = [o.name for o in response.outputs]
    raw = response.raw_output_contents[names.index("class_ids")]
    np.testing.assert_array_equal(np.frombuffer(raw, "<i8"), y)


@pytest.mark.parametrize("client", ["http", "grpc"])
def test_png_bytes_run_predict_images(http, grpc, digits, client):
    """A BYTES `images` input fits `predict_images`, not the FP32
    `serving_default`: the signature rule picks it."""
    _, y, pngs = digits
    module, session = {
        "http": (httpclient, http),
        "grpc": (grpcclient, grpc),
    }[client]
    images = np.array(pngs, dtype=object)

    result = session.infer(
        "lenet", [infer_input(module, "images", images, "BYTES")]
    )

    np.testing.assert_array_equal(result.as_numpy("class_ids"), y)


def test_signature_name_parameter_picks_the_signature(http, digits):
    x, y, _ = digits
    pixels = infer_input(httpclient, "pixels", x * 255.0, "FP32")

    result = http.infer(
        "lenet", [pixels], parameters={"signature_name": "predict_pixels"}
    )
    np.testing.assert_array_equal(result.as_numpy("class_ids"), y)
    with pytest.raises(InferenceServerException) as caught:
        http.infer("lenet", [pixels], parameters={"signature_name": "nope"})
    assert caught.value.status() == "400"
    assert "no signature 'nope'" in caught.value.message()


def test_output_selection_mixes_json_and_binary(http, digits):
    x, y, _ = digits
    outputs = [
        httpclient.InferRequestedOutput("class_names", binary_data=False),
        httpclient.InferRequestedOutput("class_ids", binary_data=True),
    ]

    result = http.infer(
        "lenet", [infer_input(httpclient, "images", x, "FP32")], outputs=outputs
    )

    answer = result.get_response()
    assert [o["name"] for o in answer["outputs"]] == [
        "class_names",
        "class_ids",
    ]
    assert answer["outputs"][0]["data"] == [str(v) for v in y]
    assert answer["outputs"][1]["parameters"] == {
        "binary_data_size": 8 * N_DIGITS
    }
    np.testing.assert_array_equal(result.as_numpy("class_ids"), y)
    assert result.as_numpy("probabilities") is None


def test_tagger_reads_raw_text_over_both_clients(servers, http, grpc, data_dir):
    utterances = trained.atis_split(data_dir, "test")[:3]
    sentences = np.array(
        [" ".join(u.words).encode() for u in utterances], dtype=object
    )
    status, _, body = post(
        servers[0].url,
        "/v1/models/slot_tagger:predict",
        {
            "signature_name": "predict_sentences",
            "instances": [s.decode() for s in sentences],
        },
    )
    v1 = json.loads(body)["predictions"]

    for module, session in ((httpclient, http), (grpcclient, grpc)):
        result = session.infer(
            "slot_tagger",
            [infer_input(module, "sentences", sentences, "BYTES")],
        )
        intents = [i.decode() for i in result.as_numpy("intent")]
        assert intents == [p["intent"] for p in v1]
        assert intents[0] == utterances[0].intent
        lengths = result.as_numpy("lengths")
        tags = result.as_numpy("tags")
        for i, p in enumerate(v1):
            got = [t.decode() for t in tags[i][: lengths[i]]]
            assert got == p["tags"][: p["lengths"]]


# === Health and metadata ===


def test_health_and_server_metadata(http, grpc):
    import kerascnn

    assert http.is_server_live() and http.is_server_ready()
    assert grpc.is_server_live() and grpc.is_server_ready()
    meta = http.get_server_metadata()
    assert meta["name"] == "kerascnn"
    assert meta["version"] == kerascnn.__version__
    assert "binary_tensor_data" in meta["extensions"]
    assert grpc.get_server_metadata().name == "kerascnn"


def test_model_metadata_from_the_signatures(servers, http, grpc):
    meta = http.get_model_metadata("lenet")

    assert meta["name"] == "lenet"
    assert meta["versions"] == ["1"]
    assert meta["platform"] == "tensorflow_savedmodel"
    assert meta["inputs"] == [
        {"name": "images", "datatype": "FP32", "shape": [-1, 28, 28, 1]}
    ]
    assert meta["outputs"] == [
        {"name": "class_ids", "datatype": "INT64", "shape": [-1]},
        {"name": "class_names", "datatype": "BYTES", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
    ]
    rpc = grpc.get_model_metadata("lenet", "1", as_json=True)
    assert rpc["inputs"] == [
        {"name": "images", "datatype": "FP32", "shape": ["-1", "28", "28", "1"]}
    ]
    status, images = get(
        servers[0].url, "/v2/models/lenet?signature_name=predict_images"
    )
    assert status == 200
    assert images["inputs"] == [
        {"name": "images", "datatype": "BYTES", "shape": [-1]}
    ]
    tagger = http.get_model_metadata("slot_tagger")
    assert tagger["inputs"] == [
        {"name": "token_ids", "datatype": "INT32", "shape": [-1, -1]}
    ]


def test_model_ready_by_version(http, grpc):
    assert http.is_model_ready("lenet")
    assert http.is_model_ready("lenet", "1")
    assert grpc.is_model_ready("slot_tagger", "1")
    assert not http.is_model_ready("lenet", "7")
    assert not http.is_model_ready("nope")
    with pytest.raises(InferenceServerException) as caught:
        grpc.is_model_ready("lenet", "7")
    assert "StatusCode.NOT_FOUND" in caught.value.status()


# === Errors, as the protocol's clients see them ===


def test_unknown_model_and_version_are_404_and_not_found(http, grpc, digits):
    x, _, _ = digits
    cases = [("nope", ""), ("lenet", "7")]
    for name, version in cases:
        with pytest.raises(InferenceServerException) as caught:
            http.infer(
                name,
                [infer_input(httpclient, "images", x, "FP32")],
                model_version=version,
            )
        assert caught.value.status() == "404"
        with pytest.raises(InferenceServerException) as caught:
            grpc.infer(
                name,
                [infer_input(grpcclient, "images", x, "FP32")],
                model_version=version,
            )
        assert caught.value.status() == "StatusCode.NOT_FOUND"
    with pytest.raises(InferenceServerException) as caught:
        http.get_model_metadata("lenet", "abc")
    assert caught.value.status() == "400"
    assert "must be an integer" in caught.value.message()


def test_wrong_datatype_and_shape_are_refused(http, grpc, digits):
    x, _, _ = digits
    cases = [
        (x.astype(np.float64), "FP64", "datatype FP64; the model expects FP32"),
        (x[..., 0], "FP32", "input 'images' expects shape (-1, 28, 28, 1)"),
    ]
    for array, datatype, message in cases:
        with pytest.raises(InferenceServerException) as caught:
            http.infer(
                "lenet", [infer_input(httpclient, "images", array, datatype)]
            )
        assert caught.value.status() == "400"
        assert message in caught.value.message()
        with pytest.raises(InferenceServerException) as caught:
            grpc.infer(
                "lenet", [infer_input(grpcclient, "images", array, datatype)]
            )
        assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
        assert message in caught.value.message()


def test_unknown_input_and_output_names_are_refused(http, digits):
    x, _, _ = digits
    with pytest.raises(InferenceServerException) as caught:
        http.infer("lenet", [infer_input(httpclient, "pics", x, "FP32")])
    assert caught.value.status() == "400"
    assert "unknown ['pics']" in caught.value.message()
    with pytest.raises(InferenceServerException) as caught:
        http.infer(
            "lenet",
            [infer_input(httpclient, "images", x, "FP32")],
            outputs=[httpclient.InferRequestedOutput("logits")],
        )
    assert "has no output 'logits'" in caught.value.message()


def test_unsupported_extensions_are_refused_and_timeout_is_read(
    http, grpc, digits
):
    x, _, _ = digits
    images = infer_input(httpclient, "images", x, "FP32")
    with pytest.raises(InferenceServerException) as caught:
        http.infer(
            "lenet",
            [images],
            outputs=[
                httpclient.InferRequestedOutput("class_ids", class_count=3)
            ],
        )
    assert caught.value.status() == "400"
    assert "'classification' is not supported" in caught.value.message()
    with pytest.raises(InferenceServerException) as caught:
        grpc.infer(
            "lenet",
            [infer_input(grpcclient, "images", x, "FP32")],
            outputs=[
                grpcclient.InferRequestedOutput("class_ids", class_count=3)
            ],
        )
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "'classification' is not supported" in caught.value.message()
    with pytest.raises(InferenceServerException) as caught:
        http.infer("lenet", [images], timeout=1)  # one microsecond
    assert caught.value.status() == "504"
    with pytest.raises(InferenceServerException) as caught:
        http.infer("lenet", [images], parameters={"signature_name": 3})
    assert "'signature_name' must be a string" in caught.value.message()


def test_curl_json_body_and_raw_binary_errors(servers, digits):
    """What curl sends: plain JSON in, plain JSON out; and bodies whose
    binary part does not add up, answered with `{"error": ...}`."""
    x, y, _ = digits
    url = servers[0].url
    body = {
        "inputs": [
            {
                "name": "images",
                "shape": [1, 28, 28, 1],
                "datatype": "FP32",
                "data": x[0].tolist(),
            }
        ]
    }
    status, headers, answer = post(url, "/v2/models/lenet/infer", body)
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    outputs = {o["name"]: o for o in json.loads(answer)["outputs"]}
    assert outputs["class_ids"]["data"] == [int(y[0])]
    assert outputs["class_names"]["data"] == [str(y[0])]

    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "images",
                    "shape": [1, 28, 28, 1],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 3136},
                }
            ]
        }
    ).encode()
    raw = x[0].astype("<f4").tobytes()
    cases = [
        (head + raw[:-4], len(head), 400, "runs past"),
        (head + raw + b"xx", len(head), 400, "not claimed"),
        (head + raw, len(head) + len(raw) + 1, 400, "Inference-Header"),
    ]
    for data, length, code, message in cases:
        status, _, answer = post(
            url,
            "/v2/models/lenet/infer",
            data,
            {"Inference-Header-Content-Length": str(length)},
        )
        assert status == code
        assert message in json.loads(answer)["error"]
    status, headers, answer = post(
        url,
        "/v2/models/lenet/infer",
        head + raw,
        {"Inference-Header-Content-Length": str(len(head))},
    )
    assert status == 200
    outputs = {o["name"]: o for o in json.loads(answer)["outputs"]}
    assert outputs["class_ids"]["data"] == [int(y[0])]


def test_claimed_sizes_are_checked_before_allocating(servers):
    url = servers[0].url
    huge = {
        "inputs": [
            {
                "name": "images",
                "shape": [10**8, 28, 28, 1],
                "datatype": "FP32",
                "data": [0.0],
            }
        ]
    }
    status, _, answer = post(url, "/v2/models/lenet/infer", huge)
    assert status == 413
    assert "over the limit" in json.loads(answer)["error"]
    short = {
        "inputs": [
            {
                "name": "images",
                "shape": [2, 28, 28, 1],
                "datatype": "FP32",
                "data": [0.0] * 784,
            }
        ]
    }
    status, _, answer = post(url, "/v2/models/lenet/infer", short)
    assert status == 400
    assert "needs 1568 elements; received 784" in json.loads(answer)["error"]


def test_rows_are_checked_against_the_budget_before_any_array(
    servers, monkeypatch
):
    """The server's `--max-request-rows` applies to v2 alike, checked on
    the claimed shape before a tensor becomes an array."""
    from kerascnn.serving.errors import BadRequest
    from kerascnn.serving.v2 import protocol, tensors

    model_server = servers[0].model_server
    rows = model_server.budget.max_request_rows + 1
    raw = np.zeros((rows, 28, 28, 1), np.float32).tobytes()
    made = []
    monkeypatch.setattr(
        tensors, "to_array", lambda *a: made.append(a) or pytest.fail()
    )
    request = protocol.InferRequest(
        model="lenet",
        version="",
        id="",
        parameters={},
        inputs=[tensors.Tensor("images", "FP32", [rows, 28, 28, 1], raw=raw)],
        outputs=None,
    )
    with pytest.raises(BadRequest, match="--max-request-rows"):
        protocol.prepare(model_server, request, len(raw) + 1)
    assert made == []


def _request_count(url, protocol, code):
    with urllib.request.urlopen(
        url + "/monitoring/prometheus/metrics", timeout=TIMEOUT
    ) as response:
        text = response.read().decode()
    return sum(
        float(row.split()[-1])
        for row in text.splitlines()
        if row.startswith("kerascnn_serving_requests_total")
        and f'protocol="{protocol}"' in row
        and 'model="lenet"' in row
        and f'code="{code}"' in row
    )


def test_metrics_count_v2_requests_by_protocol(servers, http, grpc, digits):
    x, _, _ = digits
    url = servers[0].url
    before = {
        (p, c): _request_count(url, p, c)
        for p in ("v2-rest", "v2-grpc")
        for c in (200, 400)
    }
    http.infer("lenet", [infer_input(httpclient, "images", x, "FP32")])
    grpc.infer("lenet", [infer_input(grpcclient, "images", x, "FP32")])
    wrong = x.astype(np.float64)
    with pytest.raises(InferenceServerException):
        http.infer("lenet", [infer_input(httpclient, "images", wrong, "FP64")])
    with pytest.raises(InferenceServerException):
        grpc.infer("lenet", [infer_input(grpcclient, "images", wrong, "FP64")])

    for key, count in before.items():
        assert _request_count(url, *key) == count + 1, key


# === The wire format itself ===


def test_generated_messages_match_tritons_on_the_wire():
    from tritonclient.grpc import service_pb2

    from kerascnn.serving.v2 import inference_pb

    ours = inference_pb.ModelInferRequest(model_name="m", model_version="2")
    ours.parameters["timeout"].int64_param = 5
    ours.parameters["ratio"].double_param = 0.5
    tensor = ours.inputs.add(name="x", datatype="BYTES", shape=[1])
    tensor.contents.bytes_contents.append(b"\x00\xff")
    ours.outputs.add(name="y").parameters["binary_data"].bool_param = True
    ours.raw_input_contents.append(b"abc")

    theirs = service_pb2.ModelInferRequest.FromString(ours.SerializeToString())

    assert theirs.SerializeToString(deterministic=True) == (
        ours.SerializeToString(deterministic=True)
    )
    assert theirs.parameters["ratio"].double_param == 0.5
    assert theirs.inputs[0].contents.bytes_contents == [b"\x00\xff"]


def test_bytes_tensors_round_trip_and_refuse_truncation():
    from kerascnn.serving.errors import BadRequest
    from kerascnn.serving.v2 import tensors

    values = np.array([b"", b"ab", "\u00e9".encode()], dtype=object)
    raw = tensors.serialize_bytes(values)
    assert raw[:4] == struct.pack("<I", 0)
    back = tensors.deserialize_bytes("x", raw, 3)
    assert back.tolist() == values.tolist()
    with pytest.raises(BadRequest, match="ends after 1 of 3"):
        tensors.deserialize_bytes("x", raw[:6], 3)
    with pytest.raises(BadRequest, match="claims 2 bytes"):
        tensors.deserialize_bytes("x", raw[:9], 3)
    with pytest.raises(BadRequest, match="left over"):
        tensors.deserialize_bytes("x", raw + b"z", 3)
