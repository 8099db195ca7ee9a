"""Issue 28: a server one request cannot knock over.

One test (or more) per finding of the hostile probe, each failing on the
server before the fix: per-request budgets checked before allocation
(rows, decoded pixels, claimed tensor sizes), metric labels only from
served names and rendered off the event loop, no request-sized cache,
loading that never stalls on a bad folder, no signature run at load
without warm-up records, large bodies parsed off the loop, bounded gRPC
and connection counts, hot reload of slowly copied folders.

Models are tiny plain-TF SavedModels written here; servers bind
127.0.0.1 on free ports; every wait is bounded.
"""

import asyncio
import json
import logging
import os
import shutil
import socket
import stat
import struct
import threading
import time
import tracemalloc
import urllib.error
import urllib.request
import zlib

import numpy as np
import pytest

from kerascnn.serving import ModelServer, ServeOptions, make_server, rest
from kerascnn.serving.errors import BadRequest, ServingError

IMAGE_SHAPE = (4, 4, 1)


def _options(base, **changes):
    """Serve `base`, no polling, REST on any port; `changes` override."""
    return ServeOptions(
        model_base_path=base,
        file_system_poll_wait_seconds=0,
        rest_api_port=0,
        **changes,
    )


# === Models ===


def save_pics(path):
    """`serving_default`: x float32 (-1, 2) -> y = 2x; `predict_images`:
    encoded images -> the mean of each, decoded and resized to 4x4x1."""
    import tensorflow as tf

    from kerascnn.export.saved_model import make_image_decoder

    decode = make_image_decoder(IMAGE_SHAPE)

    class Pics(tf.Module):
        @tf.function(
            input_signature=[tf.TensorSpec((None, 2), tf.float32, name="x")]
        )
        def serve(self, x):
            return {"y": x * 2.0}

        @tf.function(
            input_signature=[tf.TensorSpec((None,), tf.string, name="images")]
        )
        def images(self, images):
            return {"mean": tf.reduce_mean(decode(images), axis=[1, 2, 3])}

    pics = Pics()
    tf.saved_model.save(
        pics,
        str(path),
        signatures={
            "serving_default": pics.serve,
            "predict_images": pics.images,
        },
    )


def save_side_effect(path, marker):
    """`serving_default` writes `marker` whenever it runs."""
    import tensorflow as tf

    class Writer(tf.Module):
        @tf.function(
            input_signature=[tf.TensorSpec((None, 1), tf.float32, name="x")]
        )
        def serve(self, x):
            tf.io.write_file(marker, "ran")
            return {"y": x + 1.0}

    writer = Writer()
    tf.saved_model.save(
        writer, str(path), signatures={"serving_default": writer.serve}
    )


def save_failing_warmup(path, records=True):
    """A model whose warm-up record raises NotFoundError (not
    InvalidArgument): its signature reads a file that is not there."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    from kerascnn.export import warmup

    class Reader(tf.Module):
        @tf.function(
            input_signature=[tf.TensorSpec((None, 1), tf.float32, name="x")]
        )
        def serve(self, x):
            data = tf.io.read_file("/nonexistent/kerascnn-warmup-input")
            return {"y": x + tf.cast(tf.strings.length(data), tf.float32)}

    reader = Reader()
    tf.saved_model.save(
        reader, str(path), signatures={"serving_default": reader.serve}
    )
    if not records:
        return
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "bad"
    request.inputs["x"].CopyFrom(
        tf.make_tensor_proto(np.ones((1, 1), np.float32))
    )
    record = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)
    )
    os.makedirs(os.path.dirname(warmup.warmup_path(str(path))))
    with tf.io.TFRecordWriter(warmup.warmup_path(str(path))) as writer:
        writer.write(record.SerializeToString())


@pytest.fixture(scope="module")
def pics_version(tmp_path_factory):
    """A version folder of the `pics` model (copy it to serve it)."""
    path = tmp_path_factory.mktemp("pics_src") / "1"
    save_pics(path)
    return path


def pics_base(tmp_path, pics_version, versions=(1,)):
    for version in versions:
        shutil.copytree(pics_version, tmp_path / "pics" / str(version))
    return tmp_path


@pytest.fixture(scope="module")
def pics_server(pics_version, tmp_path_factory):
    base = pics_base(tmp_path_factory.mktemp("pics"), pics_version)
    server = make_server(
        _options(base, max_request_rows=8, max_decoded_pixels=1000)
    ).start()
    yield server
    server.shutdown()
    server.server_close()


def post(server, path, body, timeout=30):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(server.url + path, data=data)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def get(server, path, timeout=30):
    try:
        with urllib.request.urlopen(server.url + path, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def png(width, height, data=True):
    """A grey PNG; `data=False` writes the header only (a claim)."""

    def chunk(kind, payload):
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + (struct.pack(">I", crc))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
    if data:
        rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
        body += chunk(b"IDAT", zlib.compress(rows))
    return body + chunk(b"IEND", b"")


def b64_instances(images):
    import base64

    return {
        "signature_name": "predict_images",
        "instances": [{"b64": base64.b64encode(i).decode()} for i in images],
    }


# === 1. Rows and decoded pixels: budgets checked before the model call ===


def test_rows_over_the_budget_are_400_without_batching(pics_server):
    status, answer = post(
        pics_server, "/v1/models/pics:predict", {"instances": [[1, 2]] * 8}
    )
    assert status == 200 and answer["predictions"][7] == [2.0, 4.0]
    status, answer = post(
        pics_server, "/v1/models/pics:predict", {"instances": [[1, 2]] * 9}
    )
    assert status == 400
    assert "9 rows" in answer["error"]
    assert "--max-request-rows (8)" in answer["error"]


def test_decoded_pixels_are_budgeted_per_request_not_per_image(pics_server):
    path = "/v1/models/pics:predict"
    status, answer = post(pics_server, path, b64_instances([png(20, 20)] * 2))
    assert status == 200 and answer["predictions"][0] == pytest.approx(128.0)
    # 3 x 400 pixels: each image is small, the request is not.
    status, answer = post(pics_server, path, b64_instances([png(20, 20)] * 3))
    assert status == 400
    assert "1200 decoded pixels" in answer["error"]
    assert "--max-decoded-pixels (1000)" in answer["error"]


def test_an_image_header_claiming_a_huge_size_is_refused_unread(pics_server):
    started = time.monotonic()
    status, answer = post(
        pics_server,
        "/v1/models/pics:predict",
        b64_instances([png(100_000, 100_000, data=False)]),
    )
    assert status == 400
    assert "100000x100000" in answer["error"]
    assert "--max-decoded-pixels" in answer["error"]
    assert time.monotonic() - started < 5


def test_budget_applies_to_python_callers(pics_version, tmp_path):
    with ModelServer(
        _options(pics_base(tmp_path, pics_version), max_request_rows=4)
    ) as server:
        x = np.ones((5, 2), np.float32)
        with pytest.raises(BadRequest, match="5 rows"):
            server.predict_arrays("pics", {"x": x})
        assert server.predict_arrays("pics", {"x": x[:4]}).outputs["y"].shape


# === 2. gRPC TensorProtos: the claimed shape is checked before expansion ===


def _signature(pics_version):
    import tensorflow as tf

    from kerascnn.export.layout import signatures_of

    return signatures_of(tf.saved_model.load(str(pics_version)))


def test_a_tensor_proto_claiming_a_huge_shape_is_refused_unexpanded(
    pics_version,
):
    from tensorflow.core.framework import tensor_pb2, types_pb2

    from kerascnn.serving.budget import RequestBudget
    from kerascnn.serving.grpc_service import input_arrays

    signature = _signature(pics_version)["serving_default"]
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT)
    proto.tensor_shape.dim.add().size = 1000
    proto.tensor_shape.dim.add().size = 2**30  # 4 TiB of float32
    proto.float_val.append(1.0)
    budget = RequestBudget(max_request_rows=1024)
    tracemalloc.start()
    try:
        with pytest.raises(BadRequest, match="claims"):
            input_arrays(signature, {"x": proto}, budget)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20
    # A claimed batch within the byte budget but over the row budget.
    proto.tensor_shape.dim[0].size = 100_000
    with pytest.raises(BadRequest, match="100000 rows"):
        input_arrays(signature, {"x": proto}, budget)
    # Values present must match the claim (or be one value to repeat).
    proto.tensor_shape.dim[0].size = 3
    proto.tensor_shape.dim[1].size = 2
    proto.float_val.extend([1.0, 2.0])
    with pytest.raises(BadRequest, match="3 values for 6"):
        input_arrays(signature, {"x": proto}, budget)
    proto.ClearField("float_val")
    proto.tensor_content = np.ones(5, np.float32).tobytes()
    with pytest.raises(BadRequest, match="20 bytes of tensor_content"):
        input_arrays(signature, {"x": proto}, budget)
    proto.tensor_content = np.ones(6, np.float32).tobytes()
    assert input_arrays(signature, {"x": proto}, budget)["x"].shape == (3, 2)


# === 3. Metrics: labels only from served names, rendered off the loop ===


def test_unknown_model_names_never_become_metric_labels(pics_server):
    names = [f"made-up-model-{i}-" + "x" * 500 for i in range(3)]
    for name in names:
        status, _ = post(pics_server, f"/v1/models/{name}:predict", b"{}")
        assert status in (400, 404)
    status, text = get(pics_server, "/monitoring/prometheus/metrics")
    text = text.decode()
    assert status == 200
    assert not any(name in text for name in names)
    assert 'model="unknown"' in text


def test_metric_series_are_bounded():
    from kerascnn.serving.metrics import Metrics

    metrics = Metrics(max_series=10)
    for i in range(50):
        metrics.observe_request("m", str(i), "s", 200, 0.001)
    text = metrics.render().decode()
    assert text.count("kerascnn_serving_requests_total{") == 10
    assert 'version="other"' in text


def test_metrics_render_off_the_event_loop(pics_version, tmp_path):
    server = make_server(_options(pics_base(tmp_path, pics_version))).start()
    slow = threading.Event()
    render = server.model_server.metrics.render

    def slow_render():
        slow.set()
        time.sleep(2)
        return render()

    server.model_server.metrics.render = slow_render
    try:
        scrape = threading.Thread(
            target=get, args=(server, "/monitoring/prometheus/metrics")
        )
        scrape.start()
        assert slow.wait(10)
        started = time.monotonic()
        status, _ = get(server, "/healthz")
        assert status == 200 and time.monotonic() - started < 1.0
        scrape.join(10)
    finally:
        server.shutdown()
        server.server_close()


# === 4. No request-sized cache; shapes checked first ===


def test_rejected_shapes_leave_no_request_sized_cache(pics_version):
    from kerascnn.serving import numeric_json

    signature = _signature(pics_version)["serving_default"]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for width in range(3, 23):  # 20 shapes that do not fit (-1, 2)
            rows = [[0.5] * width] * 20_000
            body = json.dumps({"instances": rows}).encode()
            document = numeric_json.parse_object(body)
            numeric_json.predict_feeds(body, document, signature)
            del document, body, rows
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert retained < 2**20, retained


# === 5. One bad model folder never stops the others ===


def test_a_warmup_error_marks_that_version_failed_and_others_load(
    pics_version, tmp_path, caplog
):
    base = pics_base(tmp_path, pics_version)
    save_failing_warmup(base / "bad" / "1")
    server = ModelServer(
        _options(base, max_num_load_retries=1, load_retry_interval_micros=0)
    )
    try:
        assert server.predict_arrays("pics", {"x": np.ones((1, 2))}).version
        (entry,) = rest.status_json(server, "bad")["model_version_status"]
        assert entry["state"] == "LOADING"
        assert entry["status"]["error_code"] == "NOT_FOUND"
        assert "kerascnn-warmup-input" in entry["status"]["error_message"]
        ready, models = server.ready()
        assert not ready and models == {"pics": [1], "bad": []}
        # A model that appears later loads although `bad` keeps failing.
        shutil.copytree(pics_version, base / "late" / "1")
        server.reload()
        assert server.predict_arrays("late", {"x": np.ones((1, 2))}).version
        (entry,) = rest.status_json(server, "bad")["model_version_status"]
        assert entry["state"] == "END"  # 1 retry, then given up
        assert entry["status"]["error_code"] == "NOT_FOUND"
    finally:
        server.close()
    assert "Traceback" not in caplog.text


def test_a_signature_that_fails_at_warmup_never_stops_the_start(tmp_path):
    save_failing_warmup(tmp_path / "bad" / "1", records=False)
    with ModelServer(_options(tmp_path)) as server:
        (entry,) = rest.status_json(server, "bad")["model_version_status"]
        assert entry["state"] == "AVAILABLE"
        with pytest.raises(ServingError, match="NotFoundError"):
            server.predict_arrays("bad", {"x": np.ones((1, 1))})


# === 6. Model folders are code: nothing runs at load without warm-up ===


def test_no_signature_runs_at_load_without_warmup_records(tmp_path):
    marker = tmp_path / "ran.txt"
    save_side_effect(tmp_path / "models" / "writer" / "1", str(marker))
    with ModelServer(_options(tmp_path / "models")) as server:
        assert server.models()["writer"]
        assert not marker.exists()
        server.predict_arrays("writer", {"x": np.ones((1, 1))})
        assert marker.exists()


def test_a_base_path_writable_by_others_is_warned_about(
    pics_version, tmp_path, caplog
):
    base = pics_base(tmp_path / "open", pics_version)
    os.chmod(base, os.stat(base).st_mode | stat.S_IWOTH)
    with caplog.at_level(logging.WARNING, "kerascnn.serving"):
        ModelServer(_options(base)).close()
    assert "writable by other users" in caplog.text
    caplog.clear()
    os.chmod(base, 0o755)
    with caplog.at_level(logging.WARNING, "kerascnn.serving"):
        ModelServer(_options(base)).close()
    assert "writable by other users" not in caplog.text


def test_served_metadata_has_no_local_paths():
    from kerascnn.serving.loading import public_metadata

    meta = {
        "model": "lenet",
        "extra": {
            "recipe": {
                "run_dir": "/home/me/runs/x",
                "export_dir": "/srv/models",
                "epochs": 3,
                "data_dir": None,
            },
            "source": "/work/shared/data/mnist (IDX files)",
            "sources": ["C:\\data\\x", "mnist"],
        },
    }
    public = public_metadata(meta)
    assert public["model"] == "lenet"
    assert public["extra"]["recipe"]["epochs"] == 3
    assert public["extra"]["recipe"]["data_dir"] is None
    text = json.dumps(public)
    for path in ("/home/me", "/srv/models", "/work/shared", "C:\\\\data"):
        assert path not in text
    assert public["extra"]["sources"][1] == "mnist"


# === 7. Large bodies are parsed off the event loop; rows before arrays ===


def test_large_bodies_are_parsed_off_the_event_loop(pics_server, monkeypatch):
    from kerascnn.serving import handlers

    threads = []
    parse = handlers.parse_predict_body

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return parse(*args, **kwargs)

    monkeypatch.setattr(handlers, "parse_predict_body", spy)
    small = {"instances": [[1, 2]]}
    large = {"instances": [[1, 2]], "pad": " " * 300_000}
    assert post(pics_server, "/v1/models/pics:predict", small)[0] == 200
    assert post(pics_server, "/v1/models/pics:predict", large)[0] == 200
    assert threads[0] == "kerascnn-http"  # a small body: on the loop
    assert threads[1].startswith("kerascnn-parse")


def test_the_deadline_counts_from_arrival_not_from_parsing(
    pics_version, tmp_path, monkeypatch
):
    from kerascnn.serving import handlers
    from kerascnn.serving.errors import DeadlineExceeded

    parse = handlers.parse_predict_body

    def slow_parse(*args):
        time.sleep(0.5)  # a parser thread that was busy
        return parse(*args)

    monkeypatch.setattr(handlers, "parse_predict_body", slow_parse)
    with ModelServer(
        _options(pics_base(tmp_path, pics_version), request_timeout_seconds=0.3)
    ) as server:
        submitted = []
        submit = server.scheduler.submit
        server.scheduler.submit = lambda task: (
            submitted.append(task) or (submit(task))
        )
        body = b'{"instances": [[1, 2]]}'
        with pytest.raises(DeadlineExceeded, match="before the model call"):
            asyncio.run(rest.predict_json(server, "pics", body))
        assert not submitted


def test_rows_are_counted_before_arrays_are_built(pics_version, monkeypatch):
    from kerascnn.serving import arrays, handlers
    from kerascnn.serving.budget import RequestBudget

    def never(*args):
        raise AssertionError("to_array ran before the row check")

    monkeypatch.setattr(handlers, "to_array", never)
    monkeypatch.setattr(arrays, "to_array", never)
    signatures = _signature(pics_version)
    body = json.dumps({"instances": [{"b64": "AA=="}] * 50}).encode()
    body = body.replace(b"{", b'{"signature_name": "predict_images", ', 1)
    with pytest.raises(BadRequest, match="50 rows"):
        handlers.parse_predict_body(
            body, lambda name: signatures, RequestBudget(max_request_rows=10)
        )


@pytest.mark.parametrize(
    "request_body, name",
    [
        ({"instances": [{"x": [1, 2]}] * 50}, "instances"),
        ({"inputs": {"x": [[1, 2]] * 50}}, "x"),
        (
            {
                "signature_name": "predict_images",
                "inputs": [{"b64": "AA=="}] * 50,
            },
            "images",
        ),
        (
            {
                "signature_name": "predict_images",
                "inputs": {"images": [{"b64": "AA=="}] * 50},
            },
            "images",
        ),
    ],
)
def test_rows_are_counted_before_the_body_becomes_python_objects(
    pics_version, monkeypatch, request_body, name
):
    """Issue 28's big_json: bodies the fast path does not take were
    turned into Python objects (orjson, ~1.2 s and ~1 GB for 8 MB of
    small rows, holding the GIL) before their rows were counted."""
    from kerascnn.serving import handlers
    from kerascnn.serving.budget import RequestBudget

    signatures = _signature(pics_version)
    body = json.dumps(request_body).encode()
    budget = RequestBudget(max_request_rows=50)
    parsed = handlers.parse_predict_body(body, lambda n: signatures, budget)
    assert len(next(iter(parsed[1].values()))) == 50

    def never(body):
        raise AssertionError("the body was parsed before its rows were counted")

    monkeypatch.setattr(handlers, "parse_json", never)
    budget = RequestBudget(max_request_rows=49)
    with pytest.raises(BadRequest, match=f"Input '{name}' has 50 rows"):
        handlers.parse_predict_body(body, lambda n: signatures, budget)


def test_bodies_in_flight_are_bounded(pics_version, tmp_path):
    server = make_server(
        _options(
            pics_base(tmp_path, pics_version),
            max_body_bytes=10_000,
            max_inflight_body_bytes=15_000,
            body_timeout_seconds=5,
        )
    ).start()
    try:
        host, port = server.server_address
        holder = socket.create_connection((host, port), timeout=10)
        holder.sendall(
            b"POST /v1/models/pics:predict HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 9000\r\n\r\n{"
        )
        time.sleep(0.5)
        started = time.monotonic()
        status, answer = post(
            server, "/v1/models/pics:predict", b" " * 8000 + b"{}"
        )
        assert status == 503 and "in flight" in answer["error"]
        assert time.monotonic() - started < 2
        holder.close()
        time.sleep(0.5)
        status, _ = post(
            server, "/v1/models/pics:predict", {"instances": [[1, 2]]}
        )
        assert status == 200
    finally:
        server.shutdown()
        server.server_close()


def test_memory_is_given_back_once_large_bodies_are_gone(monkeypatch):
    """grpc_flood kept ~490 MB after 100 x 20 MB messages were answered:
    glibc keeps freed memory in its arenas unless asked (malloc_trim)."""
    from kerascnn.serving import budget

    # The real call works here (glibc): it answers whether it freed any.
    assert budget.release_free_memory() in (True, False)
    trims = []
    done = threading.Event()

    def trim():
        trims.append(bodies.held)
        done.set()
        return True

    monkeypatch.setattr(budget, "TRIM_AFTER_BYTES", 100)
    monkeypatch.setattr(budget, "TRIM_DELAY_SECONDS", 0.05)
    monkeypatch.setattr(budget, "release_free_memory", trim)
    bodies = budget.InflightBytes(1000)
    with bodies.hold(60):
        with bodies.hold(60):
            pass
        time.sleep(0.3)
        assert not trims  # 60 bytes still held: not yet
    assert done.wait(10) and trims == [0]
    done.clear()
    with bodies.hold(50):
        pass
    time.sleep(0.3)
    assert trims == [0]  # under 100 bytes since the last trim
    with bodies.hold(50):
        pass
    assert done.wait(10) and trims == [0, 0]


@pytest.mark.parametrize("count", [2, 0])
def test_serve_limits_malloc_arenas_before_its_threads_start(
    pics_version, tmp_path, monkeypatch, count
):
    """With glibc's 8 arenas per core, 100 x 20 MB gRPC messages left the
    server ~230 MB larger after their answers; with 2, 5 MB."""
    from kerascnn.serving import budget, servers

    calls = []
    real = budget.limit_malloc_arenas
    monkeypatch.setattr(
        servers, "limit_malloc_arenas", lambda n: calls.append(n) or real(n)
    )
    built = servers.build_servers(
        _options(
            pics_base(tmp_path, pics_version), port=0, malloc_arena_max=count
        )
    )
    built.close()
    assert calls == [count]
    # glibc here: it takes a limit; 0 leaves its default alone.
    assert real(count) is bool(count)


# === 8. gRPC: a bounded number of RPCs, the rest refused at once ===


def test_grpc_refuses_past_its_concurrency_limit_fast(pics_version, tmp_path):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from kerascnn.serving.grpc_service import GrpcServer

    model_server = ModelServer(_options(pics_base(tmp_path, pics_version)))
    predict = model_server.predict_arrays

    def slow_predict(*args, **kwargs):
        time.sleep(1.5)
        return predict(*args, **kwargs)

    model_server.predict_arrays = slow_predict
    server = GrpcServer(
        model_server, "127.0.0.1", 0, max_concurrent_rpcs=2
    ).start()
    try:
        import tensorflow as tf

        channel = grpc.insecure_channel(server.address)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "pics"
        request.inputs["x"].CopyFrom(
            tf.make_tensor_proto(np.ones((1, 2), np.float32))
        )
        started = time.monotonic()
        futures = [stub.Predict.future(request, 30) for _ in range(6)]
        done_at = {}
        for future in futures:
            future.add_done_callback(
                lambda f: done_at.setdefault(f, time.monotonic() - started)
            )
        codes, refused_at = [], []
        for future in futures:
            try:
                future.result()
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as e:
                codes.append(e.code())
                refused_at.append(done_at[future])
        assert codes.count(grpc.StatusCode.OK) >= 2
        assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= 1
        assert set(codes) <= {
            grpc.StatusCode.OK,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        }
        assert min(refused_at) < 1.0
        channel.close()
    finally:
        server.stop(0)
        model_server.close()


# === 9. A connection cap; accept errors logged once per interval ===


def _busy(host, port):
    """A connection with a request in progress: headers of a predict
    whose body never comes, so its handler waits for the body."""
    sock = socket.create_connection((host, port), timeout=10)
    sock.sendall(
        b"POST /v1/models/pics:predict HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    )
    return sock


def test_connections_past_the_cap_replace_idle_ones_or_get_503(
    pics_version, tmp_path
):
    """Idle connections held open (the attack) cannot lock clients out:
    at the cap the longest-idle one is closed for the newcomer; only when
    every connection is busy is the newcomer refused with 503."""
    server = make_server(
        _options(pics_base(tmp_path, pics_version), max_connections=3)
    ).start()
    try:
        host, port = server.server_address
        idle = []
        for _ in range(3):
            idle.append(socket.create_connection((host, port), timeout=10))
            time.sleep(0.05)  # opened in turn: the first is idle longest
        time.sleep(0.3)
        # Served although three connections are open; the oldest went.
        status, _ = post(
            server, "/v1/models/pics:predict", {"instances": [[1, 2]]}
        )
        assert status == 200
        assert idle[0].recv(4096) == b""  # closed by the server
        for sock in idle:
            sock.close()
        time.sleep(0.3)

        busy = [_busy(host, port) for _ in range(3)]
        time.sleep(0.3)
        extra = socket.create_connection((host, port), timeout=10)
        answer = extra.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503")
        assert b"all busy (--max-connections)" in answer
        extra.close()
        for sock in busy:
            sock.close()
        time.sleep(0.3)
        status, _ = post(
            server, "/v1/models/pics:predict", {"instances": [[1, 2]]}
        )
        assert status == 200
    finally:
        server.shutdown()
        server.server_close()


def test_accept_errors_are_logged_once_per_interval(caplog):
    import errno

    from kerascnn.serving.connections import RateLimitedExceptionHandler

    handler = RateLimitedExceptionHandler(interval=60)
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.WARNING, "kerascnn.serving"):
            for _ in range(1000):
                handler(
                    loop,
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": OSError(errno.EMFILE, "Too many files"),
                    },
                )
    finally:
        loop.close()
    records = [r for r in caplog.records if "accept" in r.getMessage()]
    assert len(records) == 1
    assert "Too many files" in records[0].getMessage()
    assert records[0].exc_info is None


def test_malformed_requests_are_logged_once_per_interval(pics_server, caplog):
    host, port = pics_server.server_address
    with caplog.at_level(logging.DEBUG, "aiohttp.server"):
        for _ in range(20):
            with socket.create_connection((host, port), timeout=10) as sock:
                sock.sendall(b"GET / HTTP/1.1 x\r\n\r\n")
                assert sock.recv(4096).startswith(b"HTTP/1.0 400")
        time.sleep(0.2)
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(records) <= 1
    assert all(r.exc_info is None for r in records)
    assert "Traceback" not in caplog.text


# === 10. Hot reload: complete folders go live at once, and can stay ===


def test_a_slowly_copied_version_goes_live_within_one_poll(
    pics_version, tmp_path
):
    base = pics_base(tmp_path, pics_version)
    server = ModelServer(_options(base, load_retry_interval_micros=600_000_000))
    try:
        target = base / "pics" / "2"
        target.mkdir()
        shutil.copy2(pics_version / "saved_model.pb", target)  # pb first
        server.reload()
        (entry,) = [
            e
            for e in rest.status_json(server, "pics")["model_version_status"]
            if e["version"] == "2"
        ]
        assert entry["status"]["error_code"] != "OK"
        shutil.copytree(
            pics_version,
            target,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("saved_model.pb"),
        )
        server.reload()  # the next poll, not the 600 s retry
        assert server.get("pics").version == 2
    finally:
        server.close()


def test_servable_versions_always_present_keeps_the_last_version(
    pics_version, tmp_path
):
    base = pics_base(tmp_path, pics_version)
    with ModelServer(
        _options(base, servable_versions_always_present=True)
    ) as server:
        shutil.rmtree(base / "pics" / "1")
        server.reload()
        assert server.predict_arrays("pics", {"x": np.ones((1, 2))}).version
    base = pics_base(tmp_path / "b", pics_version)
    with ModelServer(_options(base)) as server:
        shutil.rmtree(base / "pics" / "1")
        server.reload()
        with pytest.raises(ServingError):
            server.predict_arrays("pics", {"x": np.ones((1, 2))})


# === Minor items ===


def test_a_float32_overflow_is_400_not_inf(pics_server):
    for body in (
        b'{"instances": [[1e39, 1]]}',  # the fast path
        b'{"instances": [[1e39, 1]], "signature_name": "serving_default"}',
        b'{"inputs": {"x": [[1, -1e39]]}}',  # the general codec
    ):
        status, answer = post(pics_server, "/v1/models/pics:predict", body)
        assert status == 400, answer
        assert "out of range for float32" in answer["error"]


def test_a_request_line_without_a_version_is_an_http11_400(pics_server):
    host, port = pics_server.server_address
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"GET /healthz\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Malformed request line" in answer
    assert get(pics_server, "/healthz")[0] == 200


def test_error_messages_do_not_echo_huge_signature_names(pics_server):
    name = "s" * 100_000
    status, answer = post(
        pics_server,
        "/v1/models/pics:predict",
        {"signature_name": name, "instances": [[1, 2]]},
    )
    assert status == 400
    assert len(answer["error"]) < 1000
