"""Serving benchmark: `kerascnn serve` under N concurrent connections.

    python benchmarks/serve.py [--lenet saved_models/lenet]
        [--tagger saved_models/slot_tagger] [--connections 1,8,32,64,256]
        [--requests 2000] [--client hey|python] [--out results.json]

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


def measure(load, base_url, path, body, connections, requests, seconds):
    """One level: warm-up, then the measured run plus mean rows/call."""
    url = base_url + path
    load(url, body, connections, min(200, requests), 30)  # warm-up
    calls, rows = batch_counts(base_url)
    result = load(url, body, connections, requests, seconds)
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


def run_hey(url, body, connections, requests, max_seconds):
    # hey gives each connection n // c requests.
    requests = max(1, requests // connections) * connections
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(body)
    try:
        command = [
            "hey", "-n", str(requests),
            "-c", str(connections), "-m", "POST", "-T", "application/json",
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


async def _python_load(url, body, connections, requests, max_seconds):
    import aiohttp

    latencies, statuses, errors = [], [], [0]
    left = [requests]
    end = time.monotonic() + max_seconds
    data = body.encode()

    async def worker(session):
        while left[0] > 0 and time.monotonic() < end:
            left[0] -= 1
            t0 = time.perf_counter()
            try:
                async with session.post(
                    url, data=data, headers={"Content-Type": "application/json"}
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


def run_python(url, body, connections, requests, max_seconds):
    return asyncio.run(
        _python_load(url, body, connections, requests, max_seconds)
    )


# === Main ===


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--lenet", default=os.path.join(ROOT, "saved_models", "lenet")
    )
    parser.add_argument(
        "--tagger", default=os.path.join(ROOT, "saved_models", "slot_tagger")
    )
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
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.error("--data-dir or $KERASCNN_DATA_DIR is required.")
    client = args.client or ("hey" if shutil.which("hey") else "python")
    load = run_hey if client == "hey" else run_python
    levels = [int(c) for c in args.connections.split(",")]
    digit = mnist_digit(args.data_dir)

    servers = {}
    try:
        for batching in (False, True):
            extra = args.server_args.split() if batching else []
            servers[batching] = start_server(args.lenet, batching, extra)
        results = []
        for connections in levels:
            for batching in (False, True):
                result = measure(
                    load,
                    servers[batching][1],
                    "/v1/models/lenet:predict",
                    digit,
                    connections,
                    args.requests,
                    args.max_seconds,
                )
                result.update(
                    model="lenet", signature="serving_default",
                    batching=batching, connections=connections,
                )  # fmt: skip
                print(json.dumps(result), file=sys.stderr)
                results.append(result)
    finally:
        for process, _ in servers.values():
            stop_server(process)

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

    print(json.dumps(report(results, client), indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report(results, client), f, indent=1)


def report(results, client):
    def rate(batching, connections):
        for r in results:
            if (r["model"], r["batching"], r["connections"]) == (
                "lenet", batching, connections,
            ):  # fmt: skip
                return r["req_per_s"]
        return None

    on32, off32 = rate(True, 32), rate(False, 32)
    summary = {
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
    }
    return {
        "client": client,
        "cpu": cpu_info(),
        "summary": summary,
        "results": results,
    }


if __name__ == "__main__":
    main()
