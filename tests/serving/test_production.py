"""The server under load: backpressure, batching, versions, codec, metrics.

Everything binds 127.0.0.1 on a free port; every load loop is bounded in
count and time. LeNets are tiny; the batching test uses one trained for
one short epoch on 2,000 real MNIST digits, so answers can be checked.
"""

import asyncio
import json
import logging
import os
import re
import shutil
import threading
import time

import numpy as np
import pytest

from tests.helpers import save_run
from tests.serving.test_app import (
    MNIST_CLASSES,
    MNIST_PREPROCESSING,
    exported_lenet,
    lenet_models,
)

PREDICT = "/v1/models/lenet:predict"


@pytest.fixture(scope="module")
def lenet_dir(tmp_path_factory):
    """An untrained LeNet: `(folder with version 1, its keras model)`."""
    base, _ = exported_lenet(tmp_path_factory)
    return base / "lenet" / "1", lenet_models(tmp_path_factory)[1]


def one_model(tmp_path, source, versions=(1,)):
    """`<tmp>/lenet/<v>` copies of a version folder; returns the model dir."""
    for version in versions:
        shutil.copytree(source, tmp_path / "lenet" / str(version))
    return tmp_path / "lenet"


def serve(base, **changes):
    """A started REST server of `base`; `changes` are `ServeOptions`."""
    from kerascnn.serving import ServeOptions, make_server

    changes.setdefault("file_system_poll_wait_seconds", 0)
    options = ServeOptions(model_base_path=base, rest_api_port=0, **changes)
    return make_server(options).start()


def stop(server):
    server.shutdown()
    server.server_close()


async def _post_all(url, bodies, connections, timeout=60):
    """POSTs every body, `connections` at a time, each on its own
    connection; returns `[(status, JSON | exception)]` in order."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=connections, force_close=True)
    gate = asyncio.Semaphore(connections)
    client_timeout = aiohttp.ClientTimeout(total=timeout)

    async def one(session, body):
        async with gate:
            try:
                async with session.post(url, data=body) as response:
                    return response.status, await response.json()
            except Exception as e:  # resets, timeouts: the test counts them
                return None, e

    async with aiohttp.ClientSession(
        connector=connector, timeout=client_timeout
    ) as session:
        return await asyncio.gather(*(one(session, b) for b in bodies))


def post_all(url, bodies, connections):
    return asyncio.run(_post_all(url, bodies, connections))


def get_json(url):
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def get_status(url, path):
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url + path, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def image_body(x):
    return json.dumps({"instances": np.asarray(x).tolist()}).encode()


def metric(text, name, **labels):
    """The value of one sample in Prometheus text (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == str(v) for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def metrics_text(server):
    import urllib.request

    with urllib.request.urlopen(
        server.url + "/monitoring/prometheus/metrics", timeout=30
    ) as response:
        return response.read().decode()


# === Backpressure ===


def test_256_connections_get_200_or_503_never_a_reset(lenet_dir, tmp_path):
    source, _ = lenet_dir
    server = serve(
        one_model(tmp_path, source),
        enable_batching=False,
        num_batch_threads=1,
        max_queued_requests=4,
    )
    try:
        body = image_body(np.zeros((1, 28, 28, 1)))
        answers = post_all(server.url + PREDICT, [body] * 256, 256)
    finally:
        stop(server)
    statuses = [s for s, _ in answers]
    errors = [a for s, a in answers if s is None]
    assert not errors, errors[:3]
    assert set(statuses) <= {200, 503}
    assert statuses.count(200) >= 4 and statuses.count(503) >= 1
    for status, answer in answers:
        if status == 503:
            assert set(answer) == {"error"}
            assert "requests queued" in answer["error"]
        else:
            assert len(answer["predictions"]) == 1


def test_deadline_is_504_and_body_limit_413(lenet_dir, tmp_path):
    source, _ = lenet_dir
    server = serve(
        one_model(tmp_path, source),
        enable_batching=True,
        batch_timeout_micros=500_000,
        request_timeout_seconds=0.05,
        max_body_bytes=10_000,
    )
    try:
        cut = image_body(np.zeros((1, 28, 28, 1)))[:2000]
        status, answer = post_all(server.url + PREDICT, [cut], 1)[0]
        assert status == 400 and "Malformed JSON" in answer["error"]
        big = image_body(np.zeros((3, 28, 28, 1)))
        assert len(big) > 10_000
        status, answer = post_all(server.url + PREDICT, [big], 1)[0]
        assert status == 413 and "over the limit" in answer["error"]
        # The 0.5 s batch window outlasts the 0.05 s deadline.
        one = image_body(np.zeros((1, 28, 28, 1)))
        status, answer = post_all(server.url + PREDICT, [one], 1)[0]
        assert status == 504 and "Deadline" in answer["error"]
    finally:
        stop(server)


def test_deadline_exceeded_waiting_in_a_batch(lenet_dir, tmp_path):
    from kerascnn.serving import DeadlineExceeded, ModelServer, ServeOptions

    source, _ = lenet_dir
    with ModelServer(
        ServeOptions(
            model_base_path=one_model(tmp_path, source),
            file_system_poll_wait_seconds=0,
            enable_batching=True,
            batch_timeout_micros=500_000,
        )
    ) as server:
        x = np.zeros((1, 28, 28, 1), np.float32)
        with pytest.raises(DeadlineExceeded) as info:
            server.predict_arrays("lenet", {"images": x}, timeout=0.05)
        assert info.value.status == 504
        assert server.predict_arrays("lenet", {"images": x}).version == 1


# === Batching ===


@pytest.fixture(scope="module")
def trained_lenet(data_dir, tmp_path_factory):
    """`(model dir, keras model, 64 distinct test digits, labels)`."""
    import keras

    from kerascnn import models
    from kerascnn.data import read_idx
    from kerascnn.export import export
    from kerascnn.metadata import ModelMetadata

    root = os.path.join(data_dir, "mnist")
    x = read_idx(os.path.join(root, "train-images-idx3-ubyte.gz"))[:2000]
    y = read_idx(os.path.join(root, "train-labels-idx1-ubyte.gz"))[:2000]
    tx = read_idx(os.path.join(root, "t10k-images-idx3-ubyte.gz"))[:64]
    ty = read_idx(os.path.join(root, "t10k-labels-idx1-ubyte.gz"))[:64]
    keras.utils.set_random_seed(0)
    model = models.build("lenet", input_shape=(28, 28, 1), num_classes=10)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x[..., None] / 255.0, y, epochs=1, batch_size=32, verbose=0)
    meta = ModelMetadata(
        model="lenet",
        dataset="mnist",
        input_shape=(28, 28, 1),
        class_names=MNIST_CLASSES,
        preprocessing=MNIST_PREPROCESSING,
    )
    run = save_run(model, meta, tmp_path_factory.mktemp("runs") / "lenet")
    base = tmp_path_factory.mktemp("trained")
    export(run, base_dir=str(base), verify=False)
    images = (tx[..., None] / 255.0).astype(np.float32)
    return base / "lenet", model, images, ty.astype(int)


def test_batching_64_digits_each_get_their_own_answer(trained_lenet):
    model_dir, model, images, labels = trained_lenet
    expected = np.asarray(model(images, training=False))
    server = serve(
        model_dir,
        enable_batching=True,
        max_batch_size=64,
        batch_timeout_micros=200_000,
    )
    try:
        bodies = [image_body(images[i : i + 1]) for i in range(64)]
        answers = post_all(server.url + PREDICT, bodies, 64)
        text = metrics_text(server)
    finally:
        stop(server)
    assert [s for s, _ in answers] == [200] * 64, answers[:2]
    got = np.array([a["predictions"][0]["probabilities"] for _, a in answers])
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    ids = [a["predictions"][0]["class_ids"] for _, a in answers]
    assert ids == expected.argmax(-1).tolist()
    assert np.mean(np.array(ids) == labels) >= 0.8  # a real, trained model
    labels_ = {"model": "lenet", "signature": "serving_default"}
    calls = metric(text, "kerascnn_serving_batch_size_count", **labels_)
    rows = metric(text, "kerascnn_serving_batch_size_sum", **labels_)
    assert rows == 64 and calls < 64  # some calls served several requests
    single = metric(text, "kerascnn_serving_batch_size_bucket", le="1.0")
    assert single < calls


def test_padding_merges_different_lengths_and_trims_back():
    from kerascnn.serving.batching import merge_feeds, split_outputs

    class T:
        def __init__(self, feeds):
            self.feeds, self.rows = feeds, len(feeds["ids"])

    tasks = [
        T({"ids": np.array([[1, 2, 3]])}),
        T({"ids": np.array([[4], [5]])}),
    ]
    feeds, sizes = merge_feeds([t.feeds for t in tasks], pad=True)
    assert sizes == [1, 2]
    np.testing.assert_array_equal(
        feeds["ids"], [[1, 2, 3], [4, 0, 0], [5, 0, 0]]
    )
    outputs = {"tags": feeds["ids"] * 10, "intent": feeds["ids"].sum(1)}
    first, second = split_outputs(outputs, tasks, feeds)
    np.testing.assert_array_equal(first["tags"], [[10, 20, 30]])
    np.testing.assert_array_equal(second["tags"], [[40], [50]])
    np.testing.assert_array_equal(second["intent"], [4, 5])


def test_batching_parameters_file(tmp_path):
    from kerascnn.serving import ServingError, read_batching_parameters

    path = tmp_path / "batching.txt"
    path.write_text(
        "max_batch_size { value: 16 }\n"
        "batch_timeout_micros { value: 2000 }  # comment\n"
        "num_batch_threads { value: 3 }\n"
        "pad_variable_length_inputs: { value: true }\n"
    )
    params = read_batching_parameters(path, num_batch_threads=1)
    assert params.enabled and params.max_batch_size == 16
    assert params.batch_timeout_micros == 2000
    assert params.num_batch_threads == 1  # flags override the file
    assert params.pad_variable_length_inputs
    path.write_text("allowed_batch_sizes { value: 8 }\n")
    with pytest.raises(ServingError, match="unsupported batching parameter"):
        read_batching_parameters(path)


# === Versions ===


def _publish(source, model_dir, version):
    """Copies a version in beside the model, then renames it into place."""
    tmp = model_dir / f".tmp-{version}"
    shutil.copytree(source, tmp)
    os.rename(tmp, model_dir / str(version))


def test_hot_reload_under_load_drops_nothing(lenet_dir, tmp_path):
    source, _ = lenet_dir
    model_dir = one_model(tmp_path, source)
    server = serve(model_dir, file_system_poll_wait_seconds=0.2)
    body = image_body(np.zeros((1, 28, 28, 1)))
    results, stop_load = [], threading.Event()

    def load():
        end = time.monotonic() + 60
        while not stop_load.is_set() and time.monotonic() < end:
            results.extend(post_all(server.url + PREDICT, [body] * 8, 4))

    thread = threading.Thread(target=load)
    try:
        thread.start()
        time.sleep(0.5)
        _publish(source, model_dir, 2)
        end = time.monotonic() + 60
        while time.monotonic() < end:
            status = get_json(server.url + "/v1/models/lenet")
            states = status["model_version_status"]
            if [(s["version"], s["state"]) for s in states] == [
                ("2", "AVAILABLE")
            ]:
                break
            time.sleep(0.1)
        time.sleep(0.5)  # keep the load going after the switch
    finally:
        stop_load.set()
        thread.join(timeout=90)
        stop(server)
    assert status["model_version_status"] == [
        {
            "version": "2",
            "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""},
        }
    ]
    assert len(results) >= 16
    assert {s for s, _ in results} == {200}, [a for s, a in results][:3]


def test_broken_new_version_keeps_the_old_one_serving(
    lenet_dir, tmp_path, caplog
):
    from kerascnn.serving import ModelServer, ServeOptions, rest

    source, _ = lenet_dir
    model_dir = one_model(tmp_path, source, versions=(1, 2))
    pb = model_dir / "2" / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:100])  # truncated
    caplog.set_level(logging.WARNING, logger="kerascnn.serving")
    x = np.zeros((1, 28, 28, 1), np.float32)
    with ModelServer(
        ServeOptions(
            model_base_path=model_dir,
            file_system_poll_wait_seconds=0.1,
            max_num_load_retries=2,
            load_retry_interval_micros=200_000,
        )
    ) as server:
        assert server.predict_arrays("lenet", {"images": x}).version == 1
        time.sleep(1.5)  # several polls; only 3 attempts may happen
        assert server.predict_arrays("lenet", {"images": x}).version == 1
        status = rest.status_json(server, "lenet")["model_version_status"]
        assert status[1] == {
            "version": "1",
            "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""},
        }
        assert status[0]["version"] == "2" and status[0]["state"] == "END"
        assert status[0]["status"]["error_code"] != "OK"
        assert "Cannot load SavedModel" in status[0]["status"]["error_message"]
        failures = [
            r.message for r in caplog.records if "version 2" in r.message
        ]
        assert len([m for m in failures if "failed (attempt" in m]) == 2
        assert len([m for m in failures if "Giving up" in m]) == 1
        text = server.metrics.render().decode()
        assert (
            metric(text, "kerascnn_serving_load_failures_total", version="2")
            == 3
        )
        # Fixing the folder (a new saved_model.pb) loads it; 1 goes away.
        shutil.copy(source / "saved_model.pb", pb)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            states = rest.status_json(server, "lenet")["model_version_status"]
            if [s["version"] for s in states] == ["2"]:
                break
            time.sleep(0.1)
        assert states[0]["state"] == "AVAILABLE"
        assert server.predict_arrays("lenet", {"images": x}).version == 2


def test_model_config_file_specific_version(lenet_dir, tmp_path):
    from kerascnn.serving import ModelServer, NotFound, ServeOptions

    source, model = lenet_dir
    model_dir = one_model(tmp_path, source, versions=(1,))
    # Version 2 has other weights: serving it instead of 1 would show.
    shutil.copytree(source.parent / "2", model_dir / "2")
    config = tmp_path / "models.config"
    config.write_text(
        "model_config_list {\n"
        f'  config {{ name: "digits" base_path: "{model_dir}"\n'
        '    model_platform: "tensorflow"\n'
        "    model_version_policy { specific { versions: 1 } } }\n"
        "}\n"
    )
    with ModelServer(
        ServeOptions(
            model_config_file=str(config), file_system_poll_wait_seconds=0
        )
    ) as server:
        assert list(server.models()) == ["digits"]
        assert list(server.models()["digits"]) == [1]
        x = np.zeros((2, 28, 28, 1), np.float32)
        result = server.predict_arrays("digits", {"images": x})
        assert (
            result.version == 1 and result.signature_name == "serving_default"
        )
        assert result.outputs["probabilities"].shape == (2, 10)
        # Zeros give uniform answers from any untrained LeNet; digits
        # tell the versions apart.
        digits = np.random.default_rng(3).random((2, 28, 28, 1), np.float32)
        got = server.predict_arrays("digits", {"images": digits}).outputs
        np.testing.assert_allclose(
            got["probabilities"], np.asarray(model(digits)), atol=1e-5
        )
        with pytest.raises(NotFound):
            server.predict_arrays("digits", {"images": x}, version=2)
        with pytest.raises(NotFound):
            server.status("lenet")
        spec = server.signature("digits")
        assert spec.input_names == ["images"]
        assert spec.inputs["images"].dtype.name == "float32"


# === Codec ===


@pytest.fixture(scope="module")
def toy_server(tmp_path_factory):
    """A plain-TF SavedModel: int input, float32 and `_bytes` outputs."""
    import tensorflow as tf

    class Toy(tf.Module):
        @tf.function(
            input_signature=[tf.TensorSpec((None, 2), tf.int32, name="x")]
        )
        def serve(self, x):
            return {
                "half": tf.cast(x, tf.float32) / 10.0,
                "raw_bytes": tf.strings.as_string(x[:, 0])
                + tf.constant(b"\xff"),
                "text": tf.strings.as_string(x[:, 0])
                + tf.constant(b"\xc3\xa9"),
            }

    base = tmp_path_factory.mktemp("toy")
    toy = Toy()
    tf.saved_model.save(
        toy, str(base / "toy" / "1"), signatures={"serving_default": toy.serve}
    )
    server = serve(base)
    yield server
    stop(server)


def test_codec_float32_shortest_bytes_b64_and_int_inputs(toy_server):
    import base64
    import urllib.request

    request = urllib.request.Request(
        toy_server.url + "/v1/models/toy:predict",
        data=b'{"instances": [[1, 2]]}',
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    # Not 0.10000000149011612: float32 values in their shortest form.
    assert re.search(r'"half":\s*\[0\.1,\s*0\.2\]', text), text
    answer = json.loads(text)["predictions"][0]
    assert base64.b64decode(answer["raw_bytes"]["b64"]) == b"1\xff"
    assert answer["text"] == "1\u00e9"  # not base64: name has no _bytes
    for body, expected in [
        ({"instances": [[3.0, 1]]}, "'x' expects int32 values"),
        ({"inputs": {"x": [[1, 2.5]]}}, "'x' expects int32 values"),
    ]:
        status, answer = post_all(
            toy_server.url + "/v1/models/toy:predict",
            [json.dumps(body).encode()],
            1,
        )[0]
        assert status == 400 and expected in answer["error"]


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (
            b'{"instances": ' + b"[" * 100_000 + b"1" + b"]" * 100_000 + b"}",
            "nested too deeply",
        ),
        (b"[" * 40 + b"]" * 40, "must be a JSON object"),
        (
            b'{"instances": ' + b"[" * 40 + b"1" + b"]" * 40 + b"}",
            "input 'x' expects shape (-1, 2)",
        ),
    ],
)
def test_deep_json_is_400(toy_server, raw, expected):
    status, answer = post_all(
        toy_server.url + "/v1/models/toy:predict", [raw], 1
    )[0]
    assert status == 400 and expected in answer["error"]


@pytest.mark.parametrize(
    "path", ["/v1/models/toy/versions/%C2%B2", "/v1/models/toy/versions/1x"]
)
def test_non_ascii_digit_version_is_400(toy_server, path):
    status, answer = get_status(toy_server.url, path)
    assert status == 400 and "Malformed request: GET" in answer["error"]


def test_unknown_route_is_json_404(toy_server):
    status, answer = get_status(toy_server.url, "/nope")
    assert status == 404 and set(answer) == {"error"}


# === Metrics ===


def test_metrics_counters_move_with_requests(toy_server):
    before = metrics_text(toy_server)
    url = toy_server.url + "/v1/models/toy:predict"
    post_all(url, [b'{"instances": [[1, 2]]}'] * 3 + [b'{"instances": 1}'], 2)
    after = metrics_text(toy_server)
    ok = dict(model="toy", version="1", signature="serving_default")

    def moved(code):
        name = "kerascnn_serving_requests_total"
        return metric(after, name, code=code, **ok) - metric(
            before, name, code=code, **ok
        )

    assert moved(200) == 3 and moved(400) == 1
    latency = "kerascnn_serving_request_latency_seconds_count"
    assert (
        metric(after, latency, model="toy")
        - metric(before, latency, model="toy")
        == 4
    )
    assert "kerascnn_serving_queue_depth" in after
    assert (
        'kerascnn_serving_model_versions{model="toy",state="AVAILABLE"} 1.0'
        in after
    )


def test_made_up_signature_names_never_become_metric_labels(toy_server):
    base = toy_server.url + "/v1/models/toy"
    made_up = "made-up-signature-4711"
    bodies = [
        (":predict", {"signature_name": made_up, "instances": [[1, 2]]}),
        (":classify", {"signature_name": made_up, "examples": [{"x": 1}]}),
        (":regress", {"signature_name": made_up, "examples": [{"x": 1}]}),
    ]
    for suffix, body in bodies:
        answers = post_all(base + suffix, [json.dumps(body).encode()], 1)
        assert answers[0][0] == 400
    text = metrics_text(toy_server)
    assert made_up not in text
    for api in ("predict", "classify", "regress"):
        assert (
            metric(
                text,
                "kerascnn_serving_requests_total",
                model="toy",
                signature="",
                code="400",
                api=api,
                protocol="rest",
            )
            >= 1
        )


def _doubling_signature():
    import tensorflow as tf

    from kerascnn.export.layout import Signature

    spec = tf.TensorSpec([None, 2], tf.float32, name="x")
    fn = tf.function(lambda x: {"y": x * 2}).get_concrete_function(spec)
    out = tf.TensorSpec([None, 2], tf.float32, name="y")
    return Signature("serving_default", fn, {"x": spec}, {"y": out})


def test_a_batch_wakes_its_event_loop_once_and_skips_cancelled_waiters():
    import asyncio
    import time

    from kerascnn.serving import BatchingParameters
    from kerascnn.serving.batching import LoopFuture, Scheduler, Task

    signature = _doubling_signature()
    scheduler = Scheduler(
        BatchingParameters(max_batch_size=8, batch_timeout_micros=5_000_000)
    )

    async def main():
        loop = asyncio.get_running_loop()
        wakeups = []
        original = loop.call_soon_threadsafe

        def counting(callback, *args):
            wakeups.append(callback)
            return original(callback, *args)

        loop.call_soon_threadsafe = counting
        tasks = []
        for i in range(8):
            feeds = {"x": np.full((1, 2), i, np.float32)}
            task = Task("m", None, signature, feeds, time.monotonic() + 60)
            task.future = LoopFuture(loop)
            tasks.append(task)
        tasks[3].future.waiter.cancel()  # its caller gave up
        for task in tasks:  # the 8th row closes the batch
            scheduler.submit(task)
        live = [t.future.waiter for i, t in enumerate(tasks) if i != 3]
        results = await asyncio.wait_for(asyncio.gather(*live), 30)
        return wakeups, results

    try:
        wakeups, results = asyncio.run(main())
    finally:
        scheduler.close()
    assert len(wakeups) == 1  # one loop wake-up for the whole batch
    expected = [i for i in range(8) if i != 3]
    for i, result in zip(expected, results):
        np.testing.assert_array_equal(result["y"], [[2 * i, 2 * i]])
    assert scheduler.pending("m") == 0
