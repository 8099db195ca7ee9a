#!/usr/bin/env python3
"""Slot-tagger training throughput: kerascnn vs the PyTorch peer.

Runs, one process at a time and interleaved over `--repeats` rounds (the
order rotates each round; the machine is shared, so compare medians):

* `torch`: `peers/torch_slot_tagger.py` (Embedding 100 -> BiLSTM 128 ->
  linear, packed sequences, batch 32, Adam) with the torch interpreter;
* `kerascnn-peer-size`: kerascnn's training path (`kerascnn.data.load`
  length-bucketed ATIS batches, `kerascnn.train.build_model` /
  `compile_model`, `model.fit`) with the peer's sizes: embedding 100,
  BiLSTM 128, batch 32, no dropout. It still has the joint intent head the
  peer lacks (more work, not less);
* `kerascnn-recipe`: the `slot_tagger` recipe as `kerascnn fit` trains it
  (batch 16, dropout, word dropout, attention intent head).

Sentences/s = training sentences x timed epochs / seconds of the epochs
after the first (the peer's own formula); only training batches are timed
(no validation, as the peer does none). Output: one JSON object on stdout
with medians, raw samples and `ratio_peer_size` = kerascnn-peer-size /
torch (the goal is >= 1.0) and `ratio_recipe`.

    python benchmarks/tagger.py --data-dir ../shared/data --repeats 2 \\
        --epochs 3 --torch-python /work/torchenv/bin/python
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = {
    "kerascnn-peer-size": {
        "batch_size": 32,
        "learning_rate": 1e-3,
        "schedule": "constant",
        "model_options": {
            "embedding_dim": 100,
            "units": 128,
            "dropout": 0.0,
            "embedding_dropout": 0.0,
            "word_dropout": 0.0,
            "intent_pooling": "mean",
        },
    },
    "kerascnn-recipe": {},
}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def worker(spec):
    """Trains `spec["epochs"]` epochs; prints epoch seconds as JSON."""
    sys.path.insert(0, REPO)
    import keras

    from kerascnn import data
    from kerascnn.config import recipe_for
    from kerascnn.train import build_model, compile_model

    config = recipe_for(
        "slot_tagger", data_dir=spec["data_dir"], epochs=spec["epochs"],
        **spec["settings"],
    )  # fmt: skip
    keras.utils.set_random_seed(0)
    ds, info = data.load(
        "atis", "train", data_dir=config.data_dir,
        batch_size=config.batch_size, shuffle=True, seed=0,
    )  # fmt: skip
    model = build_model(config, info)
    steps = -(-info.num_examples // config.batch_size)
    compile_model(model, config, info, steps)

    class Timer(keras.callbacks.Callback):
        seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Your input ran out of data")
        model.fit(ds, epochs=config.epochs, verbose=0, callbacks=[Timer()])
    timed = Timer.seconds[1:] or Timer.seconds
    print(json.dumps({
        "train_sentences_per_s": info.num_examples * len(timed) / sum(timed),
        "epoch_seconds": [round(s, 3) for s in Timer.seconds],
        "n_train": info.num_examples,
        "batch_size": config.batch_size,
    }))  # fmt: skip


def run_json(cmd, env=None):
    done = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if done.returncode:
        raise SystemExit(f"{cmd[:3]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_entry(name, args):
    if name == "torch":
        peer = os.path.join(args.peers_dir, "torch_slot_tagger.py")
        out = run_json([args.torch_python, peer, "--data-dir", args.data_dir,
                        "--epochs", str(args.epochs)])  # fmt: skip
        return out["train_sentences_per_s"], out
    spec = {"data_dir": args.data_dir, "epochs": args.epochs,
            "settings": VARIANTS[name]}  # fmt: skip
    out = run_json([sys.executable, __file__, "--_worker", json.dumps(spec)])
    return out["train_sentences_per_s"], out


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return sorted(f for f in flags if f.startswith("avx"))
    except OSError:
        pass
    return []


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=os.environ.get("KERASCNN_DATA_DIR"))
    p.add_argument("--peers-dir", default=os.path.join(
        REPO, "..", "shared", "peers"))  # fmt: skip
    p.add_argument("--torch-python", default="/work/torchenv/bin/python")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--entries", default="torch,kerascnn-peer-size,"
                   "kerascnn-recipe")  # fmt: skip
    p.add_argument("--_worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._worker:
        return worker(json.loads(args._worker))
    if not args.data_dir:
        raise SystemExit("pass --data-dir or set KERASCNN_DATA_DIR")
    args.data_dir = os.path.abspath(args.data_dir)
    entries = args.entries.split(",")
    samples = {e: [] for e in entries}
    raw = {e: [] for e in entries}
    for r in range(args.repeats):
        order = entries[r % len(entries) :] + entries[: r % len(entries)]
        for name in order:
            rate, out = run_entry(name, args)
            log(f"round {r + 1} {name}: {rate:.1f} sentences/s")
            samples[name].append(rate)
            raw[name].append(out)
    medians = {e: statistics.median(v) for e, v in samples.items()}
    result = {
        "benchmark": "slot_tagger_training_throughput",
        "median_train_sentences_per_s": {
            e: round(v, 1) for e, v in medians.items()},
        "samples": {e: [round(x, 1) for x in v] for e, v in samples.items()},
        "epochs": args.epochs, "repeats": args.repeats,
        "cpu_count": os.cpu_count(), "cpu_flags": cpu_flags(),
        "machine": platform.machine(), "raw": raw,
    }  # fmt: skip
    if "torch" in medians:
        for name, key in (("kerascnn-peer-size", "ratio_peer_size"),
                          ("kerascnn-recipe", "ratio_recipe")):  # fmt: skip
            if name in medians:
                result[key] = round(medians[name] / medians["torch"], 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
