#!/usr/bin/env python3
"""Step time under tf.distribute strategies on one CPU machine; JSON out.

Two measurements, each on LeNet / real MNIST with the training recipe's
model, optimizer and loss (`kerascnn.train`), median ms per train step:

* `mirrored`: `MirroredStrategy` over 2 logical CPU devices vs the
  default strategy, same global batch, interleaved rounds in one process
  (goal: mirrored no more than 10% slower).
* `multi_worker`: two local worker processes (`MultiWorkerMirroredStrategy`,
  TF_CONFIG on 127.0.0.1) vs one process with the default strategy on the
  same global batch. The all-reduce overhead is measured directly: each
  worker also times `strategy.reduce` of a gradient-sized tensor.

    python benchmarks/distribute.py --steps 30 --repeats 3
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def _config(args, batch_size):
    from kerascnn.config import recipe_for

    return recipe_for(
        "lenet",
        data_dir=args.data_dir,
        limit=batch_size * args.steps,
        batch_size=batch_size,
        epochs=1,
        augment=False,
    )


def _model(strategy, config, train, info):
    with strategy.scope():
        model = train.build_model(config, info)
        train.compile_model(model, config, info, config.limit)
    return model


def _timed_steps(model, ds, steps):
    """Median seconds per step over the epoch after a warm-up epoch."""
    import keras

    times = []

    class StepTimer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.t = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.t)

    model.fit(ds, epochs=1, verbose=0)  # trace + warm-up
    times.clear()
    model.fit(ds, epochs=1, verbose=0, callbacks=[StepTimer()])
    return statistics.median(times[1:] or times), len(times)


# ============================== mirrored ==============================


def mirrored(args):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    from kerascnn import distribute, train

    config = _config(args, args.batch_size)
    strategies = {
        "default": distribute.get_strategy("default"),
        "mirrored_2cpu": distribute.get_strategy(
            "mirrored", ["/cpu:0", "/cpu:1"]
        ),
    }
    runs = {}
    for name, strategy in strategies.items():
        train_ds, _, info = train.load_data(config, strategy)
        runs[name] = (_model(strategy, config, train, info), train_ds)
    samples = {name: [] for name in runs}
    for r in range(args.repeats):  # interleaved rounds
        for name, (model, ds) in runs.items():
            step_s, n = _timed_steps(model, ds, args.steps)
            samples[name].append(step_s)
            log(f"round {r + 1} {name}: {step_s * 1e3:.2f} ms/step ({n})")
    ms = {k: round(statistics.median(v) * 1e3, 3) for k, v in samples.items()}
    return {
        "global_batch": args.batch_size,
        "ms_per_step": ms,
        "ms_per_step_rounds": {
            k: [round(s * 1e3, 3) for s in v] for k, v in samples.items()
        },
        "mirrored_vs_default": round(ms["mirrored_2cpu"] / ms["default"], 3),
        "goal": "mirrored_vs_default <= 1.10",
    }


# ============================ multi-worker ============================


def worker(args):
    """One worker process (also the single-process baseline)."""
    import numpy as np
    import tensorflow as tf

    from kerascnn import distribute, train

    strategy = distribute.get_strategy(args.worker_strategy)
    config = _config(args, args.batch_size)
    train_ds, _, info = train.load_data(config, strategy)
    model = _model(strategy, config, train, info)
    distribute.prepare_model(model, strategy)
    steps = []
    for _ in range(args.repeats):
        steps.append(_timed_steps(model, train_ds, args.steps)[0])
    params = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    reduce_s = _allreduce_seconds(tf, strategy, params, args.repeats * 20)
    print(
        json.dumps(
            {
                "ms_per_step": round(statistics.median(steps) * 1e3, 3),
                "allreduce_ms": round(reduce_s * 1e3, 3),
                "params": params,
            }
        ),
        flush=True,
    )


def _allreduce_seconds(tf, strategy, size, n):
    """Median time of one SUM all-reduce of `size` float32 values."""

    @tf.function
    def step():
        value = strategy.run(lambda: tf.ones([size]))
        return strategy.reduce("SUM", value, axis=None)

    step()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        step().numpy()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def multi_worker(args):
    base = [
        sys.executable, os.path.abspath(__file__), "--worker",
        "--steps", str(args.steps), "--repeats", str(args.repeats),
        "--batch-size", str(args.batch_size),
    ] + (["--data-dir", args.data_dir] if args.data_dir else [])  # fmt: skip
    env = {**os.environ, "PYTHONPATH": REPO}
    env.pop("TF_CONFIG", None)
    log("single process, default strategy")
    single = _run_json(base + ["--worker-strategy", "default"], env)
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in (0, 1):
        tf_config = {
            "cluster": cluster,
            "task": {"type": "worker", "index": index},
        }
        procs.append(
            subprocess.Popen(
                base + ["--worker-strategy", "multi_worker"],
                env={**env, "TF_CONFIG": json.dumps(tf_config)},
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    log("two workers")
    try:
        workers = [
            json.loads(p.communicate(timeout=900)[0].splitlines()[-1])
            for p in procs
        ]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    step = statistics.mean(w["ms_per_step"] for w in workers)
    return {
        "global_batch": args.batch_size,
        "single_process_ms_per_step": single["ms_per_step"],
        "two_workers_ms_per_step": round(step, 3),
        "two_workers_vs_single": round(step / single["ms_per_step"], 3),
        "allreduce_ms_per_step": round(
            statistics.mean(w["allreduce_ms"] for w in workers), 3
        ),
        "allreduce_share_of_step": round(
            statistics.mean(w["allreduce_ms"] for w in workers) / step, 3
        ),
        "gradient_values": workers[0]["params"],
        "workers": workers,
    }


def _run_json(cmd, env):
    out = subprocess.run(
        cmd, env=env, stdout=subprocess.PIPE, text=True, timeout=900, check=True
    )
    return json.loads(out.stdout.splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=os.environ.get("KERASCNN_DATA_DIR"))
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument(
        "--only", choices=["mirrored", "multi_worker"], help="one part only"
    )
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker-strategy", help=argparse.SUPPRESS)
    args = p.parse_args()
    sys.path.insert(0, REPO)
    import kerascnn  # noqa: F401  (TensorFlow flags before TF starts)

    if args.worker:
        return worker(args)
    result = {"cpu_flags": _cpu_flags(), "cores": os.cpu_count()}
    if args.only in (None, "multi_worker"):
        # First, in subprocesses, before this process configures devices.
        result["multi_worker"] = multi_worker(args)
    if args.only in (None, "mirrored"):
        result["mirrored"] = mirrored(args)
    print(json.dumps(result, indent=1))


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags"))
    except (OSError, StopIteration):
        return []
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx")
    return sorted(f for f in flags.split() if f.startswith(wanted))


if __name__ == "__main__":
    main()
