"""Issue 28's hostile probe: each attack beside a well-behaved client.

    python benchmarks/serve.py --attacks all [--attack-scale 1.0]
        [--attack-seconds 20] [--lenet saved_models/lenet]
    python benchmarks/serve_attacks.py --attacks images,metric_labels ...

For every attack a fresh `kerascnn serve` (default flags, REST and gRPC,
batching off, `--no-ui`) serves a copy of the LeNet model folder. A
well-behaved client sends one real MNIST test digit at 100 req/s
(open loop: a request every 10 ms whatever the answers), first on the
idle server for `--attack-seconds`, then while the attack runs; a
liveness probe GETs `/healthz` every 0.2 s; the server's RSS is sampled
every 0.1 s from /proc. After the attack the server settles for 3 s and
the metrics page is fetched once. Prints JSON, per attack:

    rss_before_mb, peak_growth_mb, retained_mb      (goal: <= 1500, <= 200)
    good: requests, failed, p99_ms, idle_p99_ms, p99_ratio   (0 failed, <= 3x)
    liveness_max_ms                                  (goal: <= 1000)
    metrics_bytes, metrics_ms                        (<= 1 MiB, <= 500 ms)
    attack: what the attacker got (status counts, seconds)

Attacks (`--attack-scale` multiplies their counts; 1.0 is the issue's):

    images         one body of 100,000 1x1 PNGs to predict_images
    grpc_claim     3 TensorProtos claiming 10^9 floats with one value,
                   and one claiming 100000x28x28x1
    metric_labels  20,000 :predict calls to unknown 4,000-char names
    skeleton       60 rejected bodies of distinct shapes (~1 MB each at 1.0)
    bad_folder     a corrupt version folder, then a new good model
    big_json       24 parallel 8 MB bodies on the general JSON path
    grpc_flood     5,000 RPCs on one channel, then 100 x 20 MB RPCs
    connections    2,000 idle connections held for 5 s
"""

import argparse
import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from serve import cpu_info, mnist_digit, percentile, rss_mb  # noqa: E402

ATTACKS = (
    "images",
    "grpc_claim",
    "metric_labels",
    "skeleton",
    "bad_folder",
    "big_json",
    "grpc_flood",
    "connections",
)
RATE = 100  # well-behaved requests per second


# === The server ===


def start(model_root):
    """`(process, REST url, gRPC address)` of a default `kerascnn serve`."""
    command = [
        sys.executable, "-m", "cli.main", "serve", "-m", model_root,
        "--port", "0", "--rest-api-port", "0", "--no-ui",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    address = None
    deadline = time.monotonic() + 180
    for line in process.stdout:
        if line.startswith("gRPC (TF Serving's API) on "):
            address = line.rsplit(" ", 1)[1].strip()
        if line.startswith("Serving on "):
            url = line.split()[2].split("/v1/")[0]
            threading.Thread(
                target=process.stdout.read, daemon=True
            ).start()  # keep the pipe drained
            return process, url, address
        if time.monotonic() > deadline:
            break
    process.kill()
    raise RuntimeError("server did not start")


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0.0, threading.Event()

    def run(self):
        while not self.done.wait(0.1):
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except (OSError, RuntimeError):
                return


# === The well-behaved client and the probe ===


async def good_client(url, body, stop_event):
    """A request every 1/RATE s until `stop_event`; latencies, failures."""
    import aiohttp

    latencies, failed = [], [0]
    timeout = aiohttp.ClientTimeout(total=30)
    data = body.encode()

    async def one(session):
        t0 = time.perf_counter()
        try:
            async with session.post(url, data=data) as response:
                await response.read()
                if response.status != 200:
                    failed[0] += 1
                    return
            latencies.append(time.perf_counter() - t0)
        except Exception:
            failed[0] += 1

    async with aiohttp.ClientSession(timeout=timeout) as session:
        tasks, start_time, n = [], time.monotonic(), 0
        while not stop_event.is_set():
            tasks.append(asyncio.create_task(one(session)))
            n += 1
            await asyncio.sleep(
                max(0.0, start_time + n / RATE - time.monotonic())
            )
        await asyncio.gather(*tasks)
    return {
        "requests": len(latencies) + failed[0],
        "failed": failed[0],
        "p99_ms": _ms(percentile(latencies, 99)),
    }


async def liveness(url, stop_event):
    import aiohttp

    worst = 0.0
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while not stop_event.is_set():
            t0 = time.perf_counter()
            try:
                async with session.get(url + "/healthz") as response:
                    await response.read()
                worst = max(worst, time.perf_counter() - t0)
            except Exception:
                worst = max(worst, 10.0)
            await asyncio.sleep(0.2)
    return _ms(worst)


def _ms(seconds):
    return None if seconds is None else round(seconds * 1000, 1)


def client_main(url, digit_json):
    """The well-behaved client and the liveness probe, in their own
    process (the attacker's work must not hold their GIL); run until
    stdin closes, then print their JSON."""

    async def both():
        stop_event = asyncio.Event()
        loop = asyncio.get_running_loop()

        def stop():
            loop.remove_reader(sys.stdin.fileno())
            stop_event.set()

        loop.add_reader(sys.stdin.fileno(), stop)
        print("started", flush=True)
        good = asyncio.create_task(
            good_client(
                url + "/v1/models/lenet:predict", digit_json, stop_event
            )
        )
        probe = asyncio.create_task(liveness(url, stop_event))
        return {"good": await good, "liveness_max_ms": await probe}

    print(json.dumps(asyncio.run(both())), flush=True)


class GoodClient:
    """`with GoodClient(url, digit) as client:` ... `client.result`."""

    def __init__(self, url, digit):
        self.command = [
            sys.executable, os.path.abspath(__file__), "--good-client", url,
        ]  # fmt: skip
        self.digit = digit

    def __enter__(self):
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "KERASCNN_ATTACK_DIGIT": self.digit},
            text=True,
        )
        if self.process.stdout.readline().strip() != "started":
            raise RuntimeError("the well-behaved client did not start")
        time.sleep(1)  # the client is up and sending
        return self

    def __exit__(self, *exc):
        self.process.stdin.close()  # EOF: stop
        out = self.process.stdout.read()
        self.process.wait(timeout=120)
        self.result = json.loads(out.strip().splitlines()[-1])
        return False


# === Attacks (each a blocking function run on a thread) ===


def _post(url, data, timeout=120):
    request = urllib.request.Request(url, data=data)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception as e:
        return type(e).__name__


def _count(statuses):
    counts = {}
    for s in statuses:
        counts[str(s)] = counts.get(str(s), 0) + 1
    return counts


def _png_1x1():
    def chunk(kind, payload):
        import struct

        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", crc)
        )

    import struct

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


def attack_images(ctx, scale):
    count = max(10, int(100_000 * scale))
    b64 = base64.b64encode(_png_1x1()).decode()
    body = (
        '{"signature_name": "predict_images", "instances": ['
        + ",".join([f'{{"b64": "{b64}"}}'] * count)
        + "]}"
    ).encode()
    status = _post(ctx["url"] + "/v1/models/lenet:predict", body)
    return {"images": count, "body_mb": round(len(body) / 2**20, 1),
            "status": status}  # fmt: skip


def _grpc_stub(address, max_bytes=64 * 2**20):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    channel = grpc.insecure_channel(
        address,
        options=[
            ("grpc.max_send_message_length", max_bytes + 2**20),
            ("grpc.max_receive_message_length", max_bytes + 2**20),
        ],
    )
    return channel, prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _claim(dims, values=1):
    from tensorflow.core.framework import tensor_pb2, types_pb2
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "lenet"
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT)
    for d in dims:
        proto.tensor_shape.dim.add().size = d
    proto.float_val.extend([0.5] * values)
    request.inputs["images"].CopyFrom(proto)
    return request


def _rpc_codes(futures):
    codes = []
    for future in futures:
        try:
            future.result()
            codes.append("OK")
        except Exception as e:
            code = e.code() if hasattr(e, "code") else None
            codes.append(code.name if code is not None else type(e).__name__)
    return _count(codes)


def attack_grpc_claim(ctx, scale):
    channel, stub = _grpc_stub(ctx["grpc"])
    started = time.monotonic()
    futures = [stub.Predict.future(_claim([10**9]), 120) for _ in range(3)]
    futures.append(stub.Predict.future(_claim([100_000, 28, 28, 1]), 120))
    codes = _rpc_codes(futures)
    channel.close()
    return {"codes": codes, "seconds": round(time.monotonic() - started, 2)}


def attack_metric_labels(ctx, scale):
    count = max(10, int(20_000 * scale))

    async def run():
        import aiohttp

        statuses = []
        gate = asyncio.Semaphore(32)
        async with aiohttp.ClientSession() as session:

            async def one(i):
                name = f"m{i}-" + "x" * 4000
                async with gate:
                    try:
                        async with session.post(
                            f"{ctx['url']}/v1/models/{name}:predict",
                            data=b'{"instances": [1]}',
                        ) as response:
                            statuses.append(response.status)
                    except Exception as e:
                        statuses.append(type(e).__name__)

            await asyncio.gather(*(one(i) for i in range(count)))
        return statuses

    return {"requests": count, "statuses": _count(asyncio.run(run()))}


def attack_skeleton(ctx, scale):
    count = max(2, int(60 * scale))
    rows = max(10, int(30_000 * scale))
    statuses = []
    for i in range(count):  # distinct shapes LeNet refuses: (rows, 3 + i)
        row = "[" + ",".join(["0"] * (3 + i)) + "]"
        body = ('{"instances": [' + ",".join([row] * rows) + "]}").encode()
        statuses.append(_post(ctx["url"] + "/v1/models/lenet:predict", body))
    return {"bodies": count, "statuses": _count(statuses)}


def attack_bad_folder(ctx, scale):
    bad = os.path.join(ctx["root"], "bad", "1")
    os.makedirs(bad)
    with open(os.path.join(bad, "saved_model.pb"), "wb") as f:
        f.write(b"\x08\x01garbage")
    time.sleep(3)  # a few polls: bad fails, then a good model appears
    shutil.copytree(ctx["version"], os.path.join(ctx["root"], "late", "1"))
    deadline = time.monotonic() + 60
    late = None
    while time.monotonic() < deadline:
        late = _post(
            ctx["url"] + "/v1/models/late:predict", ctx["digit"].encode()
        )
        if late == 200:
            break
        time.sleep(0.5)
    with urllib.request.urlopen(ctx["url"] + "/v1/models/bad") as r:
        bad_status = json.load(r)["model_version_status"][0]
    return {"late_model": late, "bad_status": bad_status}


def attack_big_json(ctx, scale):
    size = max(2**16, int(8 * 2**20 * scale))
    # Named instances take the general codec (not the numeric fast path).
    row = '{"images": [[[0.5],[0.5]]]}'
    count = size // len(row)
    body = ('{"instances": [' + ",".join([row] * count) + "]}").encode()
    statuses = []
    threads = [
        threading.Thread(
            target=lambda: statuses.append(
                _post(ctx["url"] + "/v1/models/lenet:predict", body)
            )
        )
        for _ in range(24)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return {"bodies": 24, "body_mb": round(len(body) / 2**20, 1),
            "statuses": _count(statuses)}  # fmt: skip


def attack_grpc_flood(ctx, scale):
    import numpy as np
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    channel, stub = _grpc_stub(ctx["grpc"])
    small = predict_pb2.PredictRequest()
    small.model_spec.name = "lenet"
    small.inputs["images"].CopyFrom(
        tf.make_tensor_proto(np.zeros((1, 28, 28, 1), np.float32))
    )
    count = max(10, int(5000 * scale))
    codes = _rpc_codes([stub.Predict.future(small, 60) for _ in range(count)])
    rows = max(1, int(20 * 2**20 / (28 * 28 * 4)))
    big = predict_pb2.PredictRequest()
    big.model_spec.name = "lenet"
    big.inputs["images"].CopyFrom(
        tf.make_tensor_proto(np.zeros((rows, 28, 28, 1), np.float32))
    )
    big_count = max(2, int(100 * scale))
    big_codes = _rpc_codes(
        [stub.Predict.future(big, 120) for _ in range(big_count)]
    )
    channel.close()
    return {"small": codes, "big_20mb": big_codes}


def attack_connections(ctx, scale):
    import socket

    host, port = ctx["url"].split("//")[1].split(":")
    count = max(10, int(2000 * scale))
    socks, refused = [], 0
    for _ in range(count):
        try:
            socks.append(socket.create_connection((host, int(port)), 5))
        except OSError:
            refused += 1
    time.sleep(5)
    for s in socks:
        s.close()
    return {"opened": len(socks), "refused": refused}


# === One attack, measured ===


def run_attack(name, model_version, digit, scale, seconds):
    root = tempfile.mkdtemp(prefix="kerascnn-attack-")
    shutil.copytree(model_version, os.path.join(root, "lenet", "1"))
    process, url, address = start(root)
    ctx = {
        "url": url,
        "grpc": address,
        "root": root,
        "version": model_version,
        "digit": digit,
    }
    attack = globals()[f"attack_{name}"]
    try:
        time.sleep(1)
        with GoodClient(url, digit) as idle_client:
            time.sleep(seconds)
        idle = idle_client.result["good"]
        before = rss_mb(process.pid)
        sampler = RssSampler(process.pid)
        sampler.start()
        with GoodClient(url, digit) as client:
            started = time.monotonic()
            outcome = attack(ctx, scale)
            outcome["seconds"] = round(time.monotonic() - started, 2)
        good, live = client.result["good"], client.result["liveness_max_ms"]
        sampler.done.set()
        time.sleep(3)
        after = rss_mb(process.pid)
        t0 = time.perf_counter()
        with urllib.request.urlopen(
            url + "/monitoring/prometheus/metrics", timeout=120
        ) as r:
            page = r.read()
        metrics_ms = _ms(time.perf_counter() - t0)
    finally:
        stop(process)
        shutil.rmtree(root, ignore_errors=True)
    ratio = None
    if idle["p99_ms"] and good["p99_ms"]:
        ratio = round(good["p99_ms"] / idle["p99_ms"], 2)
    return {
        "attack": name,
        "rss_before_mb": round(before),
        "peak_growth_mb": round(max(sampler.peak, after) - before),
        "retained_mb": round(after - before),
        "good": {**good, "idle_p99_ms": idle["p99_ms"], "p99_ratio": ratio},
        "liveness_max_ms": live,
        "metrics_bytes": len(page),
        "metrics_ms": metrics_ms,
        "outcome": outcome,
    }


def latest_version(lenet_dir):
    versions = [int(v) for v in os.listdir(lenet_dir) if v.isdigit()]
    return os.path.join(lenet_dir, str(max(versions)))


def run(lenet_dir, data_dir, names, scale=1.0, seconds=20):
    """Every attack in `names`; returns the JSON report."""
    digit = mnist_digit(data_dir)
    version = latest_version(lenet_dir)
    if {"grpc_claim", "grpc_flood"} & set(names):
        import tensorflow  # noqa: F401  (imported before any timing)
    results = []
    for name in names:
        result = run_attack(name, version, digit, scale, seconds)
        print(json.dumps(result), file=sys.stderr)
        results.append(result)
    return {"scale": scale, "seconds": seconds, "cpu": cpu_info(),
            "attacks": results}  # fmt: skip


def parse_names(text):
    names = list(ATTACKS) if text == "all" else text.split(",")
    unknown = [n for n in names if n not in ATTACKS]
    if unknown:
        raise SystemExit(f"Unknown attacks {unknown}; known: {ATTACKS}")
    return names


def main(argv=None):
    if argv is None and sys.argv[1:2] == ["--good-client"]:
        client_main(sys.argv[2], os.environ["KERASCNN_ATTACK_DIGIT"])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--lenet", default=os.path.join(ROOT, "saved_models", "lenet")
    )
    parser.add_argument(
        "--data-dir", default=os.environ.get("KERASCNN_DATA_DIR")
    )
    parser.add_argument("--attacks", default="all")
    parser.add_argument("--attack-scale", type=float, default=1.0)
    parser.add_argument("--attack-seconds", type=float, default=20)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    report = run(
        args.lenet,
        args.data_dir,
        parse_names(args.attacks),
        args.attack_scale,
        args.attack_seconds,
    )
    print(json.dumps(report, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
