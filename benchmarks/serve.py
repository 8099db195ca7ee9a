"""Serving benchmark: `kerascnn serve` under N concurrent connections.

    python benchmarks/serve.py [--lenet saved_models/lenet]
        [--tagger saved_models/slot_tagger] [--connections 1,8,32,64,256]
        [--requests 2000] [--client hey|python] [--out results.json]
    python benchmarks/serve.py --reloads 100 [--lenet saved_models/lenet]
    python benchmarks/serve.py --example-clients 10000 [--lenet ...]
    python benchmarks/serve.py --v2 [--lenet ...] [--resnet ...]
        [--connections 32] [--requests 20000] [--v2-rounds 3]

`--v2` compares the two REST dialects on one batching server: TF
Serving's JSON `{"instances": ...}` against the Open Inference
Protocol's binary tensors (Triton's binary data extension: a JSON
header, then the raw float32 image; outputs binary) and its JSON
`data`, for LeNet (a real MNIST digit) and, with `--resnet`, ResNet-20
(a real CIFAR-10 image), interleaved over `--v2-rounds` rounds at the
last `--connections` level; prints the median req/s per dialect and
v2 binary / v1 JSON (goals: 1.2x LeNet, 1.3x ResNet-20).

`--reloads N` measures memory instead: one `kerascnn serve` process
polls a copy of the LeNet model folder; N times a new version folder
(a copy of the newest) is published, the server loads it, warms it,
serves it (one request answered by the new version) and unloads the old
one. Prints the server's RSS (`VmRSS`) after reload 1, 10, 25, 50 and N,
and the growth from reload 10 to N (goal: under 50 MB).

The load run also starts two bare aiohttp endpoints per model
(`--bare-endpoint orjson|simdjson`: each only parses the same JSON into
a float32 array and answers a fixed prediction; `orjson` with
`orjson.loads` + `np.asarray` as the issue defined the limit, `simdjson`
with the flat parse kerascnn's own fast path uses) and times the
exported model in process at batch 1 and 32, so the summary gives, per
model (LeNet on a real MNIST digit; with `--resnet`, a CIFAR-10 model on
a real test image), kerascnn's throughput (batching on, 32 connections)
as a fraction of the limit on the same machine in the same run: / bare
endpoint, and / `1 / (1/bare + 1/model at batch 32)`. `--server-args`
(e.g. TF Serving's batching knobs) go to the batching server and are
printed with the summary.

`--hostile N` measures well-behaved clients' latency (8 connections,
LeNet) on an idle server, then again while N slow clients trickle their
headers one byte every half second and N/10 send bodies shorter than
their Content-Length; prints both p50/p99 and the p99 ratio (goal: under
2x), and how many hostile connections the server (started with 10 s
idle and body timeouts) had cut off within 20 s.

`--attacks all|NAMES` runs issue 28's hostile probe instead: each attack
(amplifying image bodies, gRPC tensors claiming huge shapes, made-up
model names, rejected bodies of distinct shapes, a bad model folder,
parallel large JSON bodies, a gRPC flood, thousands of idle connections)
against a fresh default server beside a well-behaved client at 100
req/s; prints peak and retained RSS growth, the good requests' failures
and p99 against idle, the liveness probe's worst latency and the
metrics page's size and time (see `benchmarks/serve_attacks.py`).

`--example-clients N` runs the logic of TF Serving's example clients on
the first N real MNIST test digits against one `kerascnn serve`:
`mnist_client.py` over gRPC (16 concurrent `Predict.future` calls,
`float_val`, argmax) and `resnet_client.py` over REST (`{"b64": ...}`
PNG bytes to `predict_images`), and prints each one's error rate.

Starts two `kerascnn serve` processes on free 127.0.0.1 ports, one with
batching off and one with it on, and drives them with a real load
generator: `hey` (Debian package `hey`) when installed, else a built-in
asyncio/aiohttp client. Levels run interleaved (off, on, off, on, ...)
so that a noisy shared machine hurts both modes alike. Every level is
bounded by `--requests` and `--max-seconds`.

One request is one real MNIST test digit (`{"instances": [28x28x1]}`)
for LeNet's `serving_default`, and one real ATIS test sentence for the
tagger's `predict_sentences` (at 32 connections). Prints JSON: per level
requests/s, p50/p99 latency (ms), failed requests (resets, timeouts,
5xx other than 503) and 503s; the batching on/off ratio at 32
connections; throughput at 64 vs 1 connection; the CPU's model and
flags and the load average (others' work on the machine).
"""

import argparse
import asyncio
import csv
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


# === Inputs ===


def mnist_digit(data_dir):
    from kerascnn.data import read_idx

    path = os.path.join(data_dir, "mnist", "t10k-images-idx3-ubyte.gz")
    image = read_idx(path)[0][..., None] / 255.0
    return json.dumps({"instances": [image.round(4).tolist()]})


def cifar_images(data_dir, count):
    """The first `count` CIFAR-10 test images (sorted paths), in [0, 1]."""
    import numpy as np
    import tensorflow as tf

    root = os.path.join(data_dir, "cifar10", "test")
    paths = sorted(
        os.path.join(root, c, f)
        for c in sorted(os.listdir(root))
        for f in sorted(os.listdir(os.path.join(root, c)))[:count]
    )[:count]
    images = [tf.io.decode_image(tf.io.read_file(p)).numpy() for p in paths]
    return (np.stack(images) / 255.0).astype(np.float32)


def cifar_image(data_dir):
    image = cifar_images(data_dir, 1)[0].astype(float)
    return json.dumps({"instances": [image.round(4).tolist()]})


def atis_sentence(data_dir):
    from kerascnn.data.text import read_iob

    path = os.path.join(data_dir, "atis", "atis.test.w-intent.iob")
    words = read_iob(path)[0].words
    return json.dumps(
        {"signature_name": "predict_sentences", "instances": [" ".join(words)]}
    )


def cpu_info():
    flags, model = [], platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and not model.strip():
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    break
    except OSError:
        pass
    wanted = [f for f in flags if f.startswith(("avx", "fma", "amx", "sse4"))]
    return {
        "model": model,
        "cores": os.cpu_count(),
        "flags": sorted(wanted),
        "load_average": os.getloadavg(),
    }


# === Servers ===


def start_server(model_dir, batching, extra=()):
    """A `kerascnn serve` process; returns `(process, url)`."""
    command = [
        sys.executable, "-m", "cli.main", "serve",
        "-m", model_dir, "--port", "0", "--rest-api-port", "0",
        "--file-system-poll-wait-seconds", "0",
        "--enable-batching" if batching else "--disable-batching",
        *extra,
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 180
    for line in process.stdout:
        if line.startswith("Serving on "):
            return process, line.split()[2].split("/v1/")[0]
        if time.monotonic() > deadline:
            break
    process.kill()
    raise RuntimeError(f"server did not start: {' '.join(command)}")


def stop_server(process):
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def batch_counts(base_url):
    """`(model calls, rows)` so far, from the server's Prometheus metrics."""
    import urllib.request

    with urllib.request.urlopen(
        base_url + "/monitoring/prometheus/metrics", timeout=30
    ) as response:
        text = response.read().decode()
    calls = rows = 0.0
    for line in text.splitlines():
        if line.startswith("kerascnn_serving_batch_size_count"):
            calls += float(line.rsplit(" ", 1)[1])
        if line.startswith("kerascnn_serving_batch_size_sum"):
            rows += float(line.rsplit(" ", 1)[1])
    return calls, rows


def measure(
    load, base_url, path, body, connections, requests, seconds, headers=None
):
    """One level: warm-up, then the measured run plus mean rows/call."""
    url = base_url + path
    load(url, body, connections, min(200, requests), 30, headers)  # warm-up
    calls, rows = batch_counts(base_url)
    result = load(url, body, connections, requests, seconds, headers)
    calls2, rows2 = batch_counts(base_url)
    if calls2 > calls:
        result["mean_batch_rows"] = round((rows2 - rows) / (calls2 - calls), 2)
    return result


# === Load generators ===


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def summarize(latencies, statuses, errors, seconds):
    answered = len(statuses)
    return {
        "requests": answered + errors,
        "seconds": round(seconds, 2),
        "req_per_s": round(answered / seconds, 1) if seconds else None,
        "p50_ms": _ms(percentile(latencies, 50)),
        "p99_ms": _ms(percentile(latencies, 99)),
        "failed": errors + sum(1 for s in statuses if s >= 500 and s != 503),
        "status_503": sum(1 for s in statuses if s == 503),
        "status_other": sum(1 for s in statuses if s not in (200, 503)),
    }


def _ms(seconds):
    return None if seconds is None else round(seconds * 1000, 2)


def run_hey(url, body, connections, requests, max_seconds, headers=None):
    """`headers` (a dict) may set `Content-Type` and others: the v2 binary
    bodies are bytes with an `Inference-Header-Content-Length`."""
    # hey gives each connection n // c requests.
    requests = max(1, requests // connections) * connections
    data = body if isinstance(body, bytes) else body.encode()
    headers = {"Content-Type": "application/json", **(headers or {})}
    with tempfile.NamedTemporaryFile("wb", suffix=".body", delete=False) as f:
        f.write(data)
    try:
        extra = [
            a
            for key, value in headers.items()
            if key != "Content-Type"
            for a in ("-H", f"{key}: {value}")
        ]
        command = [
            "hey", "-n", str(requests),
            "-c", str(connections), "-m", "POST",
            "-T", headers["Content-Type"], *extra,
            "-D", f.name, "-t", "60", "-o", "csv", url,
        ]  # fmt: skip
        start = time.monotonic()
        out = subprocess.run(
            command, capture_output=True, text=True, timeout=max_seconds + 90
        ).stdout
        seconds = time.monotonic() - start
    finally:
        os.unlink(f.name)
    rows = list(csv.DictReader(io.StringIO(out)))
    latencies = [float(r["response-time"]) for r in rows]
    statuses = [int(r["status-code"]) for r in rows]
    errors = requests - len(rows)
    if rows:  # hey's clock: first request start to last answer
        seconds = max(
            float(r["offset"]) + float(r["response-time"]) for r in rows
        )
    return summarize(latencies, statuses, errors, seconds)


async def _python_load(
    url, body, connections, requests, max_seconds, headers=None
):
    import aiohttp

    latencies, statuses, errors = [], [], [0]
    left = [requests]
    end = time.monotonic() + max_seconds
    data = body if isinstance(body, bytes) else body.encode()
    headers = {"Content-Type": "application/json", **(headers or {})}

    async def worker(session):
        while left[0] > 0 and time.monotonic() < end:
            left[0] -= 1
            t0 = time.perf_counter()
            try:
                async with session.post(
                    url, data=data, headers=headers
                ) as response:
                    await response.read()
                    statuses.append(response.status)
                    latencies.append(time.perf_counter() - t0)
            except Exception:
                errors[0] += 1

    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout
    ) as session:
        start = time.monotonic()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        seconds = time.monotonic() - start
    return summarize(latencies, statuses, errors[0], seconds)


def run_python(url, body, connections, requests, max_seconds, headers=None):
    return asyncio.run(
        _python_load(url, body, connections, requests, max_seconds, headers)
    )


# === Main ===


# === RSS over hot reloads ===


def rss_mb(pid):
    """Resident set size of a process, in MB (from /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _serving_version(url, model):
    import urllib.request

    with urllib.request.urlopen(f"{url}/v1/models/{model}", timeout=30) as r:
        states = json.load(r)["model_version_status"]
    return [int(s["version"]) for s in states if s["state"] == "AVAILABLE"]


def reload_rss(lenet_dir, data_dir, reloads, timeout=120):
    """RSS of a `kerascnn serve` process across `reloads` hot reloads."""
    import urllib.request

    digit = mnist_digit(data_dir).encode()
    work = tempfile.mkdtemp(prefix="kerascnn-reloads-")
    model_dir = os.path.join(work, "lenet")
    first = max(int(v) for v in os.listdir(lenet_dir) if v.isdigit())
    shutil.copytree(
        os.path.join(lenet_dir, str(first)), os.path.join(model_dir, "1")
    )
    command = [
        sys.executable, "-m", "cli.main", "serve", "-m", model_dir,
        "--port", "0", "--rest-api-port", "0", "--no-ui",
        "--file-system-poll-wait-seconds", "0.2",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    samples = {}
    try:
        for line in process.stdout:
            if line.startswith("Serving on "):
                url = line.split()[2].split("/v1/")[0]
                break
        else:
            raise RuntimeError("server did not start")
        samples[0] = rss_mb(process.pid)
        for version in range(2, reloads + 2):
            shutil.copytree(
                os.path.join(model_dir, str(version - 1)),
                os.path.join(model_dir, f".tmp-{version}"),
            )
            os.rename(
                os.path.join(model_dir, f".tmp-{version}"),
                os.path.join(model_dir, str(version)),
            )
            deadline = time.monotonic() + timeout
            while _serving_version(url, "lenet") != [version]:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"version {version} did not load")
                time.sleep(0.05)
            request = urllib.request.Request(
                f"{url}/v1/models/lenet/versions/{version}:predict", digit
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                json.load(response)
            shutil.rmtree(os.path.join(model_dir, str(version - 1)))
            samples[version - 1] = rss_mb(process.pid)
    finally:
        stop_server(process)
        shutil.rmtree(work, ignore_errors=True)
    marks = sorted({1, 10, 25, 50, reloads} & set(samples))
    return {
        "reloads": reloads,
        "rss_mb_at_start": round(samples[0], 1),
        "rss_mb_after": {str(k): round(samples[k], 1) for k in marks},
        "growth_mb_10_to_last": round(samples[reloads] - samples[10], 1)
        if reloads >= 10
        else None,
        "cpu": cpu_info(),
    }


# === The limit: a bare endpoint and the model alone ===


BARE_PARSERS = ("orjson", "simdjson")


def serve_bare(parser="orjson"):
    """A bare aiohttp endpoint: JSON -> float32 array -> fixed answer.

    `orjson`: `orjson.loads` + `np.asarray` (the issue's limit);
    `simdjson`: the same flat parse kerascnn's fast path does (without
    its nesting check), so the ratio against it is not flattered by a
    faster parser.
    """
    import numpy as np
    import orjson
    import simdjson
    from aiohttp import web

    answer = orjson.dumps({"predictions": [[0.1] * 10]})

    def with_orjson(body):
        return np.asarray(orjson.loads(body)["instances"], dtype=np.float32)

    def with_simdjson(body):
        instances = simdjson.Parser().parse(body)["instances"]
        flat = np.frombuffer(instances.as_buffer(of_type="d"), np.float64)
        return flat.astype(np.float32)

    parse = with_orjson if parser == "orjson" else with_simdjson

    async def predict(request):
        parse(await request.read())
        return web.Response(body=answer, content_type="application/json")

    async def metrics(request):
        return web.Response(text="")

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/v1/models/{tail:.*}", predict)
    app.router.add_get("/monitoring/prometheus/metrics", metrics)
    sock = __import__("socket").create_server(("127.0.0.1", 0), backlog=1024)
    port = sock.getsockname()[1]
    print(f"Serving on http://127.0.0.1:{port}/v1/models/<name>", flush=True)
    web.run_app(app, sock=sock, print=None, access_log=None)


def start_bare(parser="orjson"):
    command = [
        sys.executable, os.path.abspath(__file__), "--bare-endpoint", parser
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    for line in process.stdout:
        if line.startswith("Serving on "):
            return process, line.split()[2].split("/v1/")[0]
    process.kill()
    raise RuntimeError("bare endpoint did not start")


def model_rates(model_dir, x, seconds=5.0):
    """Images/s of the exported model in process at batch 1 and 32 (`x`
    holds at least 32 images)."""
    import tensorflow as tf

    version = max(v for v in os.listdir(model_dir) if v.isdigit())
    model = tf.saved_model.load(os.path.join(model_dir, version))
    fn = model.signatures["serving_default"]
    rates = {}
    for batch in (1, 32):
        images = tf.constant(x[:batch])
        fn(images=images)  # warm
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            fn(images=images)
            count += batch
        rates[batch] = round(count / (time.perf_counter() - started), 1)
    return rates


def mnist_images(data_dir, count):
    import numpy as np

    from kerascnn.data import read_idx

    path = os.path.join(data_dir, "mnist", "t10k-images-idx3-ubyte.gz")
    return (read_idx(path)[:count, ..., None] / 255.0).astype(np.float32)


def load_levels(load, args, model_dir, body, levels):
    """Batching off and on (interleaved) at each level, then the bare
    endpoint on the same body at 32 connections."""
    name = os.path.basename(os.path.normpath(model_dir))
    path = f"/v1/models/{name}:predict"
    servers, results = {}, []
    try:
        for batching in (False, True):
            extra = args.server_args.split() if batching else []
            servers[batching] = start_server(model_dir, batching, extra)
        for connections in levels:
            for batching in (False, True):
                result = measure(
                    load, servers[batching][1], path, body, connections,
                    args.requests, args.max_seconds,
                )  # fmt: skip
                result.update(
                    model=name, signature="serving_default",
                    batching=batching, connections=connections,
                )  # fmt: skip
                print(json.dumps(result), file=sys.stderr)
                results.append(result)
    finally:
        for process, _ in servers.values():
            stop_server(process)
    for parser in BARE_PARSERS:
        process, url = start_bare(parser)
        try:
            bare = measure(
                load, url, path, body, 32, args.requests, args.max_seconds
            )
        finally:
            stop_server(process)
        bare.update(model=f"bare-{parser}:{name}", batching=None)
        bare.update(connections=32)
        print(json.dumps(bare), file=sys.stderr)
        results.append(bare)
    return results


# === Hostile clients ===


HOSTILE_TIMEOUT = 10  # the server's idle and body timeouts in --hostile


async def _slow_header_client(host, port, stop, cut):
    """Sends a request line and headers one byte every 0.5 s."""
    data = b"POST /v1/models/lenet:predict HTTP/1.1\r\nHost: x\r\nX-Slow: "
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return
    try:
        for i in range(10**6):
            if stop.is_set():
                break
            writer.write(data[i : i + 1] if i < len(data) else b"a")
            await writer.drain()
            await asyncio.sleep(0.5)
    except (ConnectionError, OSError):
        cut.append(1)
    finally:
        writer.close()


async def _lying_body_client(host, port, stop, cut):
    """Announces 1 MB of body, sends 20 bytes, waits."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            b"POST /v1/models/lenet:predict HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 1000000\r\n\r\n" + b'{"instances": [[[[0'
        )
        await writer.drain()
        answer = await reader.read(100)
        if answer:
            cut.append(1)
        writer.close()
    except (ConnectionError, OSError):
        cut.append(1)


async def _under_attack(url, body, slow, requests):
    host, port = url.split("//")[1].split(":")
    stop, cut = asyncio.Event(), []
    hostile = [
        asyncio.create_task(_slow_header_client(host, int(port), stop, cut))
        for _ in range(slow)
    ] + [
        asyncio.create_task(_lying_body_client(host, int(port), stop, cut))
        for _ in range(max(1, slow // 10))
    ]
    await asyncio.sleep(2)  # every hostile connection is open
    result = await _python_load(
        url + "/v1/models/lenet:predict", body, 8, requests, 60
    )
    await asyncio.wait(hostile, timeout=HOSTILE_TIMEOUT + 10)
    stop.set()
    await asyncio.wait(hostile, timeout=10)
    result["hostile_connections"] = len(hostile)
    result["hostile_cut_off"] = len(cut)
    return result


def hostile(lenet_dir, data_dir, slow, requests=1000):
    digit = mnist_digit(data_dir)
    timeouts = [
        "--idle-timeout-seconds", str(HOSTILE_TIMEOUT),
        "--body-timeout-seconds", str(HOSTILE_TIMEOUT),
    ]  # fmt: skip
    process, url = start_server(lenet_dir, False, ["--no-ui", *timeouts])
    try:
        idle = run_python(
            url + "/v1/models/lenet:predict", digit, 8, requests, 60
        )
        attacked = asyncio.run(_under_attack(url, digit, slow, requests))
    finally:
        stop_server(process)
    return {
        "idle": idle,
        "under_attack": attacked,
        "p99_ratio": round(attacked["p99_ms"] / idle["p99_ms"], 2),
        "cpu": cpu_info(),
    }


# === TF Serving's example clients ===


def _start_both(model_dir):
    """`(process, grpc address, REST url)` of a batching server."""
    command = [
        sys.executable, "-m", "cli.main", "serve", "-m", model_dir,
        "--model-name", "lenet",
        "--port", "0", "--rest-api-port", "0", "--no-ui",
        "--file-system-poll-wait-seconds", "0", "--enable-batching",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    address = None
    for line in process.stdout:
        if line.startswith("gRPC (TF Serving's API) on "):
            address = line.rsplit(" ", 1)[1].strip()
        if line.startswith("Serving on "):
            return process, address, line.split()[2].split("/v1/")[0]
    process.kill()
    raise RuntimeError("server did not start")


def mnist_client_errors(address, images, labels, concurrency=16):
    """mnist_client.py's loop: throttled `Predict.future` + callbacks."""
    import threading

    import grpc
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    stub = prediction_service_pb2_grpc.PredictionServiceStub(
        grpc.insecure_channel(address)
    )
    state = {"error": 0, "done": 0, "active": 0}
    condition = threading.Condition()

    def callback(label):
        def done(future):
            wrong = True
            if not future.exception():
                scores = future.result().outputs["probabilities"].float_val
                wrong = int(np.argmax(scores)) != label
            with condition:
                state["error"] += wrong
                state["done"] += 1
                state["active"] -= 1
                condition.notify_all()

        return done

    for image, label in zip(images, labels):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "lenet"
        request.inputs["images"].CopyFrom(
            tf.make_tensor_proto(image, shape=[1, *image.shape])
        )
        with condition:
            while state["active"] == concurrency:
                condition.wait()
            state["active"] += 1
        stub.Predict.future(request, 30.0).add_done_callback(
            callback(int(label))
        )
    with condition:
        while state["done"] != len(labels):
            condition.wait(timeout=60)
    return state["error"] / len(labels)


def resnet_client_rest_errors(url, pngs, labels):
    """resnet_client.py's request: `{"instances": [{"b64": ...}]}`."""
    import base64
    import urllib.request

    errors = 0
    for png, label in zip(pngs, labels):
        b64 = base64.b64encode(png).decode("utf-8")
        body = (
            f'{{"signature_name": "predict_images", '
            f'"instances" : [{{"b64": "{b64}"}}]}}'
        )
        request = urllib.request.Request(
            url + "/v1/models/lenet:predict", body.encode()
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            prediction = json.load(response)["predictions"][0]
        errors += int(prediction["class_ids"] != int(label))
    return errors / len(labels)


def example_clients(lenet_dir, data_dir, count):
    import numpy as np
    import tensorflow as tf

    from kerascnn.data import read_idx

    root = os.path.join(data_dir, "mnist")
    x = read_idx(os.path.join(root, "t10k-images-idx3-ubyte.gz"))[:count]
    y = read_idx(os.path.join(root, "t10k-labels-idx1-ubyte.gz"))[:count]
    pngs = [tf.io.encode_png(d[..., None]).numpy() for d in x]
    images = (x[..., None] / 255.0).astype(np.float32)
    process, address, url = _start_both(lenet_dir)
    try:
        started = time.perf_counter()
        grpc_error = mnist_client_errors(address, images, y)
        grpc_seconds = time.perf_counter() - started
        started = time.perf_counter()
        rest_error = resnet_client_rest_errors(url, pngs, y)
        rest_seconds = time.perf_counter() - started
    finally:
        stop_server(process)
    return {
        "digits": int(count),
        "mnist_client_grpc_error_rate": grpc_error,
        "resnet_client_rest_b64_error_rate": rest_error,
        "seconds": {
            "grpc": round(grpc_seconds, 1),
            "rest": round(rest_seconds, 1),
        },
        "cpu": cpu_info(),
    }


# === v1 JSON against v2 binary (the Open Inference Protocol) ===


V2_MODES = ("v1_json", "v2_binary", "v2_json")


def v2_bodies(image):
    """`{mode: (path suffix, body, headers)}` for one float32 image: TF
    Serving's `{"instances": ...}`, v2 JSON `data`, and v2 binary (the
    JSON header, then the raw little-endian floats; all outputs asked
    for as binary, as tritonclient does when no outputs are named)."""
    import numpy as np

    image = np.asarray(image, np.float32).round(4)
    shape = [1, *image.shape]
    v1 = json.dumps({"instances": [image.tolist()]})
    tensor = {"name": "images", "shape": shape, "datatype": "FP32"}
    v2_json = json.dumps(
        {"inputs": [{**tensor, "data": image.reshape(-1).tolist()}]}
    )
    raw = image.astype("<f4").tobytes()
    head = json.dumps(
        {
            "inputs": [
                {**tensor, "parameters": {"binary_data_size": len(raw)}}
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    binary_headers = {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(head)),
    }
    return {
        "v1_json": (":predict", v1, None),
        "v2_binary": ("/infer", head + raw, binary_headers),
        "v2_json": ("/infer", v2_json, None),
    }


def _path(name, mode, suffix):
    if mode == "v1_json":
        return f"/v1/models/{name}{suffix}"
    return f"/v2/models/{name}{suffix}"


def _check_once(url, path, body, headers):
    """One request of each body, so a broken body fails loudly first."""
    import urllib.request

    data = body if isinstance(body, bytes) else body.encode()
    request = urllib.request.Request(url + path, data, headers or {})
    with urllib.request.urlopen(request, timeout=60) as response:
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}")


def v1_vs_v2(load, args, model_dir, image):
    """v1 JSON, v2 binary and v2 JSON on one batching server at
    `--connections` (default 32), interleaved for `--v2-rounds` rounds."""
    name = os.path.basename(os.path.normpath(model_dir))
    bodies = v2_bodies(image)
    connections = int(args.connections.split(",")[-1])
    process, url = start_server(
        model_dir, True, ["--no-ui", *args.server_args.split()]
    )
    results = []
    try:
        for mode, (suffix, body, headers) in bodies.items():
            _check_once(url, _path(name, mode, suffix), body, headers)
        for round_ in range(args.v2_rounds):
            for mode, (suffix, body, headers) in bodies.items():
                result = measure(
                    load, url, _path(name, mode, suffix), body, connections,
                    args.requests, args.max_seconds, headers,
                )  # fmt: skip
                result.update(
                    model=name, mode=mode, round=round_,
                    connections=connections,
                    body_bytes=len(body),
                )  # fmt: skip
                print(json.dumps(result), file=sys.stderr)
                results.append(result)
    finally:
        stop_server(process)
    return results


def v2_report(results, client, server_args=""):
    """Median req/s per model and mode, and v2 binary / v1 JSON."""
    import statistics

    summary = {}
    for name in dict.fromkeys(r["model"] for r in results):
        rates = {
            mode: [
                r["req_per_s"]
                for r in results
                if r["model"] == name and r["mode"] == mode
            ]
            for mode in V2_MODES
        }
        medians = {m: statistics.median(v) for m, v in rates.items() if v}
        summary[name] = {
            "req_per_s_median": medians,
            "req_per_s_runs": rates,
            "v2_binary_vs_v1_json": round(
                medians["v2_binary"] / medians["v1_json"], 2
            ),
            "v2_json_vs_v1_json": round(
                medians["v2_json"] / medians["v1_json"], 2
            ),
        }
    return {
        "client": client,
        "cpu": cpu_info(),
        "batching_server_args": server_args,
        "failed_total": sum(r["failed"] + r["status_other"] for r in results),
        "summary": summary,
        "results": results,
    }


def run_v2(load, client, args):
    results = v1_vs_v2(
        load, args, args.lenet, mnist_images(args.data_dir, 1)[0]
    )
    if args.resnet and os.path.isdir(args.resnet):
        image = cifar_images(args.data_dir, 1)[0]
        results += v1_vs_v2(load, args, args.resnet, image)
    return v2_report(results, client, args.server_args)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--lenet", default=os.path.join(ROOT, "saved_models", "lenet")
    )
    parser.add_argument(
        "--tagger", default=os.path.join(ROOT, "saved_models", "slot_tagger")
    )
    parser.add_argument(
        "--resnet", default=os.path.join(ROOT, "saved_models", "resnet20"),
        help="A CIFAR-10 model folder (32x32x3 images) timed at 32 "
        "connections against its own combined limit; skipped if absent.",
    )  # fmt: skip
    parser.add_argument(
        "--data-dir", default=os.environ.get("KERASCNN_DATA_DIR")
    )
    parser.add_argument("--connections", default="1,8,32,64,256")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--max-seconds", type=float, default=60)
    parser.add_argument("--tagger-connections", type=int, default=32)
    parser.add_argument(
        "--client", choices=["hey", "python"], default=None,
        help="Load generator (default: hey when installed).",
    )  # fmt: skip
    parser.add_argument(
        "--server-args", default="", help="Extra flags for the batching server."
    )
    parser.add_argument("--out", default=None, help="Also write JSON here.")
    parser.add_argument(
        "--reloads", type=int, default=0,
        help="Measure RSS over this many hot reloads instead of load.",
    )  # fmt: skip
    parser.add_argument(
        "--bare-endpoint", choices=BARE_PARSERS, default=None,
        help="Only run the bare aiohttp endpoint (used by the load run).",
    )  # fmt: skip
    parser.add_argument(
        "--hostile", type=int, default=0,
        help="Latency with this many slow-header clients attached.",
    )  # fmt: skip
    parser.add_argument(
        "--attacks", default=None,
        help="Issue 28's attacks beside a 100 req/s client: 'all' or "
        "names (see benchmarks/serve_attacks.py).",
    )  # fmt: skip
    parser.add_argument("--attack-scale", type=float, default=1.0)
    parser.add_argument("--attack-seconds", type=float, default=20)
    parser.add_argument(
        "--example-clients", type=int, default=0,
        help="Run TF Serving's example clients on this many test digits.",
    )  # fmt: skip
    parser.add_argument(
        "--v2", action="store_true",
        help="v1 JSON against v2 binary (and v2 JSON) req/s with batching "
        "at the last --connections level, LeNet and --resnet.",
    )  # fmt: skip
    parser.add_argument("--v2-rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.bare_endpoint:
        serve_bare(args.bare_endpoint)
        return
    if not args.data_dir:
        parser.error("--data-dir or $KERASCNN_DATA_DIR is required.")
    if args.reloads or args.example_clients or args.hostile or args.attacks:
        if args.attacks:
            import serve_attacks

            result = serve_attacks.run(
                args.lenet,
                args.data_dir,
                serve_attacks.parse_names(args.attacks),
                args.attack_scale,
                args.attack_seconds,
            )
        elif args.reloads:
            result = reload_rss(args.lenet, args.data_dir, args.reloads)
        elif args.hostile:
            result = hostile(args.lenet, args.data_dir, args.hostile)
        else:
            result = example_clients(
                args.lenet, args.data_dir, args.example_clients
            )
        print(json.dumps(result, indent=1))
        if args.out:
            with open(args.out, "w") as f:
                json.dump(result, f, indent=1)
        return
    client = args.client or ("hey" if shutil.which("hey") else "python")
    load = run_hey if client == "hey" else run_python
    if args.v2:
        answer = run_v2(load, client, args)
        print(json.dumps(answer, indent=1))
        if args.out:
            with open(args.out, "w") as f:
                json.dump(answer, f, indent=1)
        return
    levels = [int(c) for c in args.connections.split(",")]
    digit = mnist_digit(args.data_dir)
    results = load_levels(load, args, args.lenet, digit, levels)
    rates = {"lenet": model_rates(args.lenet, mnist_images(args.data_dir, 32))}
    if args.resnet and os.path.isdir(args.resnet):
        image = cifar_image(args.data_dir)
        results += load_levels(load, args, args.resnet, image, [32])
        name = os.path.basename(os.path.normpath(args.resnet))
        rates[name] = model_rates(args.resnet, cifar_images(args.data_dir, 32))

    if args.tagger and os.path.isdir(args.tagger):
        sentence = atis_sentence(args.data_dir)
        for batching in (False, True):
            process, url = start_server(args.tagger, batching)
            try:
                result = measure(
                    load, url, "/v1/models/slot_tagger:predict", sentence,
                    args.tagger_connections, args.requests // 2,
                    args.max_seconds,
                )  # fmt: skip
            finally:
                stop_server(process)
            result.update(
                model="slot_tagger", signature="predict_sentences",
                batching=batching, connections=args.tagger_connections,
            )  # fmt: skip
            print(json.dumps(result), file=sys.stderr)
            results.append(result)

    answer = report(results, client, rates, args.server_args)
    print(json.dumps(answer, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(answer, f, indent=1)


def report(results, client, model_rates, server_args=""):
    def rate(batching, connections, model="lenet"):
        for r in results:
            if (r["model"], r["batching"], r["connections"]) == (
                model, batching, connections,
            ):  # fmt: skip
                return r["req_per_s"]
        return None

    on32, off32 = rate(True, 32), rate(False, 32)
    summary = {
        "batching_server_args": server_args,
        "batching_speedup_at_32": round(on32 / off32, 2)
        if on32 and off32
        else None,
        "on_64_vs_1": round(rate(True, 64) / rate(True, 1), 2)
        if rate(True, 64) and rate(True, 1)
        else None,
        "off_64_vs_1": round(rate(False, 64) / rate(False, 1), 2)
        if rate(False, 64) and rate(False, 1)
        else None,
        "failed_total": sum(r["failed"] for r in results),
        "model_img_per_s": model_rates,
    }
    for name, rates in model_rates.items():
        on, off = rate(True, 32, name), rate(False, 32, name)
        if not on:
            continue
        summary[name] = {
            "on_req_per_s_at_32": on,
            "batching_on_vs_off": round(on / off, 2) if off else None,
        }
        for parser in BARE_PARSERS:
            bare = rate(None, 32, f"bare-{parser}:{name}")
            if not bare:
                continue
            limit = 1 / (1 / bare + 1 / rates[32])
            summary[name][f"bare_{parser}_req_per_s"] = bare
            summary[name][f"on_vs_bare_{parser}"] = round(on / bare, 2)
            summary[name][f"combined_limit_{parser}"] = round(limit, 1)
            summary[name][f"on_vs_combined_limit_{parser}"] = round(
                on / limit, 2
            )
    return {
        "client": client,
        "cpu": cpu_info(),
        "summary": summary,
        "results": results,
    }


if __name__ == "__main__":
    main()
