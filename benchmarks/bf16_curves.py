#!/usr/bin/env python3
"""bf16 against float32 over whole training runs: curves, not one number.

Trains ResNet-20 on a CIFAR-10 subset with the recipe's schedule
compressed to `--epochs` (step decay at 50% and 75% of the steps), once
per precision and seed, two runs at a time, then prints one JSON object:
each run's final test accuracy (the float32 copy of the model on the
whole test split, or `--eval-limit` images), per-epoch history, epoch
seconds, and the mean accuracy difference bf16 - float32. The curves of
all runs go on one picture through `kerascnn visualize curves --compare`.

    python benchmarks/bf16_curves.py --runs-root /tmp/bf16-curves \\
        --limit 10000 --epochs 15 --seeds 0,1 \\
        --picture docs/resnet20_bf16_curves.png

`--summarize` skips training and reads run directories already in
`--runs-root` (named `f32-s<seed>` and `bf16-s<seed>`).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRECISIONS = {"f32": "none", "bf16": "mixed_bfloat16"}


def fit_command(args, tag, seed):
    """The `kerascnn fit` command line of one run."""
    cmd = [
        sys.executable,
        "-m",
        "cli.main",
        "fit",
        args.model,
        "--limit",
        str(args.limit),
        "--epochs",
        str(args.epochs),
        "--seed",
        str(seed),
        "--mixed-precision",
        PRECISIONS[tag],
        "--run-dir",
        os.path.join(args.runs_root, f"{tag}-s{seed}"),
        "--no-export",
        "--log-format",
        "json",
    ]
    if args.eval_limit:
        cmd += ["--eval-limit", str(args.eval_limit)]
    return cmd


def train_pairs(args, seeds):
    """float32 and bf16 of each seed side by side (niced), seed by seed."""
    env = dict(os.environ, PYTHONPATH=REPO)
    for seed in seeds:
        procs = [
            subprocess.Popen(
                ["nice", "-n", "5", *fit_command(args, tag, seed)],
                cwd=REPO,
                env=env,
                stdout=subprocess.DEVNULL,
            )
            for tag in PRECISIONS
        ]
        for proc in procs:
            if proc.wait() != 0:
                raise SystemExit(f"error: a run of seed {seed} failed")


def read_run(run_dir):
    """Final test metrics, history and epoch seconds of a finished run."""
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    with open(os.path.join(run_dir, "history.json")) as f:
        history = json.load(f)
    return {
        "test_accuracy": metrics["accuracy"],
        "test_loss": round(metrics["loss"], 4),
        "test_examples": metrics.get("num_examples"),
        "val_accuracy_by_epoch": [round(v, 4) for v in history["val_accuracy"]],
        "train_loss_by_epoch": [round(v, 4) for v in history["loss"]],
        "epoch_seconds": [round(s, 1) for s in metrics["epoch_seconds"]],
    }


def summarize(args, seeds):
    runs = {
        f"{tag}-s{seed}": read_run(
            os.path.join(args.runs_root, f"{tag}-s{seed}")
        )
        for seed in seeds
        for tag in PRECISIONS
    }
    acc = {
        tag: [runs[f"{tag}-s{s}"]["test_accuracy"] for s in seeds]
        for tag in PRECISIONS
    }
    mean = {tag: statistics.mean(v) for tag, v in acc.items()}
    diff = 100 * (mean["bf16"] - mean["f32"])
    return {
        "benchmark": "bf16_curves",
        "settings": {
            "model": args.model,
            "limit": args.limit,
            "epochs": args.epochs,
            "seeds": seeds,
            "eval_limit": args.eval_limit,
            "commands": [
                " ".join(fit_command(args, tag, s)[1:])
                for s in seeds
                for tag in PRECISIONS
            ],
        },
        "runs": runs,
        "mean_test_accuracy": mean,
        "per_seed_difference_points": [
            round(100 * (b - f), 2) for b, f in zip(acc["bf16"], acc["f32"])
        ],
        "mean_difference_points_bf16_minus_f32": round(diff, 2),
        "seed_spread_points_f32": round(
            100 * (max(acc["f32"]) - min(acc["f32"])), 2
        ),
        "within_0.3_points": abs(diff) <= 0.3,
    }


def draw(args, seeds):
    names = [f"{tag}-s{s}" for s in seeds for tag in PRECISIONS]
    cmd = [sys.executable, "-m", "cli.main", "visualize", names[0], "curves"]
    for name in names[1:]:
        cmd += ["--compare", name]
    cmd += ["--out", os.path.abspath(args.picture)]
    env = dict(os.environ, PYTHONPATH=REPO)
    # Run from the runs root so the legend shows the short run names.
    subprocess.run(
        cmd, cwd=args.runs_root, env=env, check=True, stdout=subprocess.DEVNULL
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnet20")
    p.add_argument("--runs-root", required=True)
    p.add_argument("--limit", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--eval-limit", type=int, default=None)
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--picture", help="write the curves PNG here")
    p.add_argument(
        "--summarize",
        action="store_true",
        help="read existing runs, do not train",
    )
    args = p.parse_args(argv)
    args.runs_root = os.path.abspath(args.runs_root)
    seeds = [int(s) for s in args.seeds.split(",")]
    if not args.summarize:
        os.makedirs(args.runs_root, exist_ok=True)
        train_pairs(args, seeds)
    if args.picture:
        draw(args, seeds)
    print(json.dumps(summarize(args, seeds), indent=1))


if __name__ == "__main__":
    main()
