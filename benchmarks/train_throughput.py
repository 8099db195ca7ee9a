#!/usr/bin/env python3
"""Training throughput of `kerascnn fit` side by side with the peer scripts.

Measures training images/s after warm-up for

* `kerascnn.train.fit` (LeNet-5 on MNIST, ResNet-20 on CIFAR-10), one fresh
  subprocess per run, with one or more *variants* (settings and environment
  variables) so tuning choices can be compared in the same session;
* the peer baselines in `--peers-dir` (`torch_lenet.py`, `keras_lenet.py`,
  `torch_resnet20.py`, `keras_resnet20.py`), each with its own interpreter.

Everything runs one process at a time, interleaved over `--repeats` rounds
(the order of the entries rotates every round), because the machine is
shared and noisy: compare medians, not single runs. The result is one JSON
object on stdout (progress goes to stderr): per-entry medians, every raw
sample, and the ratios kerascnn/torch and kerascnn/keras-peer per model.

Images/s are computed like the peers do: `n * timed_epochs / sum(seconds of
the epochs after the first)`, n = the training examples used (`--limit-*`).
For kerascnn the seconds are `RunResult.epoch_seconds`, which span the whole
Keras epoch, i.e. they include the per-epoch validation pass (on
`--eval-limit` test images) and the epoch-end callbacks (checkpoints,
backup, CSV, TensorBoard), which the peers do not run. A second rate,
`train_only_images_per_s`, times only the training batches of each epoch
(from epoch start to the start of validation). The peers time training
only, so `ratios` (and the goals) use the train-only rate; the
`ratios_whole_epoch` beside them use the whole-epoch rate.

Examples:

    python benchmarks/train_throughput.py --data-dir ../shared/data \\
        --repeats 3 --epochs 3 --limit-lenet 10000 --limit-resnet 5000

    # compare variants of kerascnn (settings and env vars) in one session:
    python benchmarks/train_throughput.py --peers none --models lenet \\
        --variant base: \\
        --variant onednn:env.TF_ENABLE_ONEDNN_OPTS=1 \\
        --variant b256:env.TF_ENABLE_ONEDNN_OPTS=1,batch_size=256

    # bf16 against float32 (train-only images/s, per-round ratios in
    # "variant_ratios"), ResNet-20 and ResNet-50 at 224x224:
    python benchmarks/train_throughput.py --peers none \
        --models resnet20,resnet50_224 --epochs 3 --repeats 3 \
        --variant float32:mixed_precision=none \
        --variant bf16:mixed_precision=mixed_bfloat16

`resnet50_224` is ResNet-50 on CIFAR-10 resized to 224x224 (batch 32,
`--limit-resnet50` images, no peers): the cost of the 224 px recipes.

A variant is `NAME:key=value,key=value,...`: keys are `TrainConfig` fields
(`batch_size`, `mixed_precision`, `steps_per_execution`, `jit_compile`,
`augment`, ...), `env.VAR` sets an environment variable for that kerascnn
subprocess, and a `lenet.` / `resnet20.` / `resnet50_224.` prefix limits a key
to one model.
`--set key=value` and `--env VAR=value` apply to every variant. Values are
parsed as JSON when possible (`256`, `true`, `null`), else kept as strings.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {
    # benchmark name: peer script suffix (None: no peers), registry model,
    # and settings every variant of it starts from.
    "lenet": dict(peer="lenet", model="lenet", settings={}),
    "resnet20": dict(peer="resnet20", model="resnet20", settings={}),
    # The 224 px recipes' cost: ResNet-50 on CIFAR-10 resized to 224x224
    # (no peer scripts; compare variants, e.g. bf16 vs float32). Batch 32
    # keeps float32 activations within a few GiB.
    "resnet50_224": dict(
        peer=None,
        model="resnet50",
        settings={"input_shape": [224, 224, 3], "batch_size": 32},
    ),
}
PEERS = ("torch", "keras")
# Goals of the throughput issue: kerascnn / peer >= these ratios, by kind
# of CPU (native bf16 = AVX512_BF16 or AMX; else AVX2-class).
GOALS = {
    "native_bf16": {
        "lenet": {"kerascnn/torch": 1.5, "kerascnn/keras": 1.1},
        "resnet20": {"kerascnn/torch": 1.75, "kerascnn/keras": 1.1},
    },
    "other": {
        "lenet": {"kerascnn/torch": 1.2, "kerascnn/keras": 1.1},
        "resnet20": {"kerascnn/torch": 1.3, "kerascnn/keras": 1.1},
    },
}


def machine_info():
    """CPU model, the flags that matter, and the kind of goals that apply."""
    sys.path.insert(0, REPO)
    from kerascnn import hardware

    info = hardware.describe()
    info["goals"] = "native_bf16" if info["native_bf16"] else "other"
    return info


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# =============================== Worker ===============================


def _worker(spec):
    """Runs one `kerascnn.train.fit` and prints one JSON line."""
    sys.path.insert(0, REPO)
    from kerascnn import train
    from kerascnn.config import recipe_for

    train_only = []

    def make_callbacks(config, run_dir, nan_stop, timer, metadata=None):
        import keras

        class TrainOnlyTimer(keras.callbacks.Callback):
            """Seconds from epoch start to the start of validation."""

            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.perf_counter()
                self._recorded = False

            def on_test_begin(self, logs=None):
                if not self._recorded:
                    train_only.append(time.perf_counter() - self._start)
                    self._recorded = True

            def on_epoch_end(self, epoch, logs=None):
                if not self._recorded:  # no validation this epoch
                    train_only.append(time.perf_counter() - self._start)
                    self._recorded = True

        callbacks = original(config, run_dir, nan_stop, timer, metadata)
        return [TrainOnlyTimer()] + callbacks

    original = train.make_callbacks
    train.make_callbacks = make_callbacks

    with tempfile.TemporaryDirectory(prefix="kerascnn-bench-") as tmp:
        settings = dict(spec["settings"])
        if settings.get("input_shape"):
            settings["input_shape"] = tuple(settings["input_shape"])
        config = recipe_for(
            spec["model"],
            data_dir=spec["data_dir"],
            epochs=spec["epochs"],
            limit=spec["limit"],
            eval_limit=spec["eval_limit"],
            export=False,
            log_format="quiet",
            runs_root=tmp,
            run_dir=os.path.join(tmp, "run"),
            **settings,
        )
        start = time.perf_counter()
        result = train.fit(config, resume=False)
        total = time.perf_counter() - start
        import keras
        import tensorflow as tf

        out = {
            "epoch_seconds": [round(s, 4) for s in result.epoch_seconds],
            "train_only_seconds": [round(s, 4) for s in train_only],
            "test_accuracy": round(float(result.metrics.get("accuracy", 0)), 4),
            "wall_seconds": round(total, 2),
            "config": {
                k: getattr(result.config, k)
                for k in (
                    "batch_size",
                    "mixed_precision",
                    "jit_compile",
                    "steps_per_execution",
                    "augment",
                    "limit",
                    "eval_limit",
                    "epochs",
                )
            },
            "versions": {
                "tensorflow": tf.__version__,
                "keras": keras.__version__,
            },
        }
    print(json.dumps(out), flush=True)


# ============================== Parsing ===============================


def _value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _pairs(text):
    """`k=v,k=v` -> list of (k, v) with JSON-parsed values."""
    pairs = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        if "=" not in item:
            raise SystemExit(f"error: expected key=value, got {item!r}")
        key, value = item.split("=", 1)
        pairs.append((key.strip(), _value(value.strip())))
    return pairs


def parse_variant(text):
    name, _, rest = text.partition(":")
    if not name:
        raise SystemExit(f"error: variant {text!r} needs a NAME: prefix")
    return name, _pairs(rest)


def resolve(pairs, model):
    """Settings and env for one model from (key, value) pairs."""
    settings, env = {}, {}
    for key, value in pairs:
        prefix, dot, rest = key.partition(".")
        if dot and prefix in MODELS:
            if prefix != model:
                continue
            key = rest
        if key.startswith("env."):
            env[key[4:]] = "" if value is None else str(value)
        else:
            settings[key] = value
    return settings, env


# ================================ Runs ================================


def _last_json(stdout):
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def _rate(n, seconds):
    timed = seconds[1:] or seconds
    if not timed or sum(timed) <= 0:
        return None
    return round(n * len(timed) / sum(timed), 1)


def _loadavg():
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def run_cmd(cmd, env, timeout):
    load = _loadavg()
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout}s", load
    wall = time.perf_counter() - start
    out = _last_json(proc.stdout)
    if proc.returncode != 0 or out is None:
        tail = (proc.stderr or "").strip().splitlines()[-5:]
        return None, f"exit {proc.returncode}: " + " | ".join(tail), load
    out["_wall"] = round(wall, 1)
    return out, None, load


def _limit(args, model):
    """Training examples per run of `model` (its `--limit-*` flag)."""
    return {
        "lenet": args.limit_lenet,
        "resnet20": args.limit_resnet,
        "resnet50_224": args.limit_resnet50,
    }[model]


def run_kerascnn(args, model, name, pairs):
    settings, extra_env = resolve(pairs, model)
    settings = {**MODELS[model]["settings"], **settings}
    limit = _limit(args, model)
    eval_limit = (
        min(args.eval_limit, limit)
        if model == "resnet50_224"
        else args.eval_limit
    )
    spec = dict(
        model=MODELS[model]["model"],
        data_dir=args.data_dir,
        epochs=args.epochs,
        limit=limit,
        eval_limit=eval_limit,
        settings=settings,
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **extra_env)
    cmd = [
        args.kerascnn_python,
        os.path.abspath(__file__),
        "--_worker",
        json.dumps(spec),
    ]
    out, err, load = run_cmd(cmd, env, args.timeout)
    sample = {"loadavg_before": load, "settings": settings, "env": extra_env}
    if err:
        return {**sample, "error": err}
    return {
        **sample,
        "images_per_s": _rate(limit, out["epoch_seconds"]),
        "train_only_images_per_s": _rate(limit, out["train_only_seconds"]),
        "epoch_seconds": out["epoch_seconds"],
        "train_only_seconds": out["train_only_seconds"],
        "test_accuracy": out["test_accuracy"],
        "n_train": limit,
        "precision": out["config"]["mixed_precision"],
        "steps_per_execution": out["config"]["steps_per_execution"],
        "config": out["config"],
    }


def peer_python(args, peer):
    return args.torch_python if peer == "torch" else args.keras_python


def run_peer(args, model, peer):
    python = peer_python(args, peer)
    script = os.path.join(args.peers_dir, f"{peer}_{MODELS[model]['peer']}.py")
    limit = _limit(args, model)
    cmd = [
        python,
        script,
        "--data-dir",
        args.data_dir,
        "--epochs",
        str(args.epochs),
        "--limit",
        str(limit),
    ]
    out, err, load = run_cmd(cmd, dict(os.environ), args.timeout)
    sample = {"loadavg_before": load}
    if err:
        return {**sample, "error": err}
    return {
        **sample,
        "images_per_s": out.get("train_images_per_s"),
        "epoch_seconds": out.get("epoch_seconds"),
        "test_accuracy": out.get("test_accuracy"),
        "n_train": out.get("n_train"),
        "threads": out.get("threads"),
    }


def _median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 1) if values else None


def summarize(samples):
    summary = {
        "median_images_per_s": _median(s.get("images_per_s") for s in samples),
        "samples_images_per_s": [s.get("images_per_s") for s in samples],
    }
    if any("train_only_images_per_s" in s for s in samples):
        summary["median_train_only_images_per_s"] = _median(
            s.get("train_only_images_per_s") for s in samples
        )
        summary["samples_train_only_images_per_s"] = [
            s.get("train_only_images_per_s") for s in samples
        ]
    for key in ("precision", "steps_per_execution"):
        seen = sorted({str(s[key]) for s in samples if key in s})
        if seen:
            summary[key] = ", ".join(seen)
    summary["runs"] = samples
    return summary


def _ratio(a, b):
    return round(a / b, 3) if a and b else None


def paired_variant_ratios(samples, model, names):
    """Train-only rate of each variant over the first one's, per round.

    Runs of one round are back to back, so on a shared machine their
    ratio is steadier than a ratio of medians: the median of the
    per-round ratios is reported with every round's value.
    """
    if len(names) < 2:
        return {}
    first = names[0]
    out = {}
    for name in names[1:]:
        per_round = []
        for a, b in zip(samples[(model, name)], samples[(model, first)]):
            rate = a.get("train_only_images_per_s")
            base = b.get("train_only_images_per_s")
            per_round.append(_ratio(rate, base))
        valid = [r for r in per_round if r is not None]
        out[f"{name}/{first}"] = {
            "median": round(statistics.median(valid), 3) if valid else None,
            "rounds": per_round,
        }
    return out


# ================================ Main ================================


def build_parser():
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    shared = os.path.join(REPO, "..", "shared")
    p.add_argument(
        "--data-dir",
        default=os.environ.get("KERASCNN_PEER_DATA")
        or os.environ.get("KERASCNN_DATA_DIR")
        or os.path.join(shared, "data"),
        help="folder with mnist/ and cifar10/ (default: env "
        "KERASCNN_PEER_DATA, KERASCNN_DATA_DIR, ../shared/data)",
    )
    p.add_argument("--peers-dir", default=os.path.join(shared, "peers"))
    p.add_argument(
        "--torch-python",
        default=os.environ.get("TORCH_PY"),
        help="interpreter with torch for the PyTorch peers "
        "(default: env TORCH_PY; skipped when unset)",
    )
    p.add_argument(
        "--keras-python",
        default=sys.executable,
        help="interpreter for the Keras peers (default: this one)",
    )
    p.add_argument("--kerascnn-python", default=sys.executable)
    p.add_argument(
        "--models",
        default="lenet,resnet20",
        help="comma-separated subset of: " + ", ".join(MODELS),
    )
    p.add_argument(
        "--peers",
        default="torch,keras",
        help="comma-separated subset of torch, keras, or 'none'",
    )
    p.add_argument("--limit-lenet", type=int, default=10000)
    p.add_argument("--limit-resnet", type=int, default=5000)
    p.add_argument(
        "--limit-resnet50",
        type=int,
        default=128,
        help="training images of resnet50_224 runs",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=3,
        help="epochs per run; the first one is not timed",
    )
    p.add_argument(
        "--eval-limit",
        type=int,
        default=1000,
        help="kerascnn test images (per-epoch validation and the "
        "final evaluation)",
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--timeout",
        type=int,
        default=900,
        help="seconds allowed per subprocess",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="TrainConfig override for every kerascnn variant",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="VAR=VALUE",
        help="environment variable for every kerascnn variant",
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE,...",
        help="a kerascnn variant (repeatable); default: one "
        "variant 'kerascnn' with the recipe's settings",
    )
    p.add_argument("--_worker", help=argparse.SUPPRESS)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args._worker:
        _worker(json.loads(args._worker))
        return 0

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in models:
        if m not in MODELS:
            raise SystemExit(f"error: unknown model {m!r}")
    peers = (
        []
        if args.peers.strip() == "none"
        else [p.strip() for p in args.peers.split(",") if p.strip()]
    )
    for p in peers:
        if p not in PEERS:
            raise SystemExit(f"error: unknown peer {p!r}")

    base = [(k, _value(v)) for k, v in (s.split("=", 1) for s in args.set)]
    base += [(f"env.{k}", v) for k, v in (s.split("=", 1) for s in args.env)]
    variants = [parse_variant(v) for v in args.variant] or [("kerascnn", [])]
    variants = [(name, base + pairs) for name, pairs in variants]
    names = [name for name, _ in variants]
    if len(set(names)) != len(names) or set(names) & set(PEERS):
        raise SystemExit(
            "error: variant names must be unique and not 'torch' or 'keras'"
        )

    cpu = machine_info()
    log(
        f"CPU: {cpu['cpu_model']}; flags: "
        + ", ".join(f for f, on in cpu["flags"].items() if on)
        + f"; native bf16: {cpu['native_bf16']}"
    )
    notes = []
    available = []
    for peer in peers:
        python = peer_python(args, peer)
        if not python or not (
            os.path.isfile(python) and os.access(python, os.X_OK)
        ):
            notes.append(
                f"peer {peer!r} skipped: interpreter {python} not found"
            )
            continue
        available.append(peer)

    entries = []  # (model, kind, name, payload)
    for model in models:
        for peer in available if MODELS[model]["peer"] else ():
            script = os.path.join(
                args.peers_dir, f"{peer}_{MODELS[model]['peer']}.py"
            )
            if not os.path.isfile(script):
                notes.append(
                    f"peer {peer!r} for {model} skipped: {script} not found"
                )
                continue
            entries.append((model, "peer", peer, None))
        for name, pairs in variants:
            entries.append((model, "kerascnn", name, pairs))

    samples = {(m, n): [] for m, _, n, _ in entries}
    load_start = _loadavg()
    t0 = time.perf_counter()
    for r in range(args.repeats):
        k = r % len(entries) if entries else 0
        order = entries[k:] + entries[:k]
        for model, kind, name, payload in order:
            log(f"[round {r + 1}/{args.repeats}] {model} {name} ...")
            if kind == "peer":
                s = run_peer(args, model, name)
            else:
                s = run_kerascnn(args, model, name, payload)
            s["round"] = r + 1
            samples[(model, name)].append(s)
            log(
                f"    -> {s.get('images_per_s')} img/s"
                + (
                    f" (train only {s['train_only_images_per_s']})"
                    if s.get("train_only_images_per_s")
                    else ""
                )
                + (
                    f" [{s['precision']}, steps_per_execution "
                    f"{s['steps_per_execution']}]"
                    if "precision" in s
                    else ""
                )
                + (f" ERROR {s['error']}" if s.get("error") else "")
                + f" load {s['loadavg_before']}"
            )

    results, ratios, whole_epoch, goals = {}, {}, {}, {}
    variant_ratios = {}
    for model in models:
        results[model] = {
            name: summarize(samples[(model, name)])
            for (m, name) in samples
            if m == model
        }
        # Like for like: the peers time training batches only, so the
        # goal ratios use kerascnn's train-only rate; whole-epoch ratios
        # (validation and checkpoints included) are reported beside them.
        med = {n: v["median_images_per_s"] for n, v in results[model].items()}
        train = {n: v.get("median_train_only_images_per_s") or med[n]
                 for n, v in results[model].items()}  # fmt: skip
        ratios[model], whole_epoch[model] = {}, {}
        for name in names:
            for peer in PEERS:
                if peer in med:
                    key = f"{name}/{peer}"
                    ratios[model][key] = _ratio(train[name], med[peer])
                    whole_epoch[model][key] = _ratio(med[name], med[peer])
        variant_ratios[model] = paired_variant_ratios(samples, model, names)
        goals[model] = {}
        for key, target in GOALS[cpu["goals"]].get(model, {}).items():
            peer = key.split("/")[1]
            for name in names:
                got = ratios[model].get(f"{name}/{peer}")
                goals[model][f"{name}/{peer}"] = {
                    "target": target,
                    "ratio": got,
                    "met": None if got is None else got >= target,
                }

    print(
        json.dumps(
            {
                "benchmark": "train_throughput",
                "settings": {
                    "models": models,
                    "peers": available,
                    "repeats": args.repeats,
                    "epochs": args.epochs,
                    "limit_lenet": args.limit_lenet,
                    "limit_resnet": args.limit_resnet,
                    "eval_limit": args.eval_limit,
                    "data_dir": args.data_dir,
                    "variants": {
                        n: [f"{k}={v}" for k, v in p] for n, p in variants
                    },
                    "rate": (
                        "n * timed_epochs / sum(epoch seconds after the "
                        "first); median over repeats"
                    ),
                },
                "machine": {
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                    "cpu_model": cpu["cpu_model"],
                    "cpu_flags": cpu["flags"],
                    "native_bf16": cpu["native_bf16"],
                    "goals": cpu["goals"],
                    "loadavg_start": load_start,
                    "loadavg_end": _loadavg(),
                    "wall_seconds": round(time.perf_counter() - t0, 1),
                },
                "results": results,
                "ratios": ratios,
                "ratios_whole_epoch": whole_epoch,
                "variant_ratios": variant_ratios,
                "goals": goals,
                "notes": notes,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
