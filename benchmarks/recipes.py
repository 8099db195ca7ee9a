#!/usr/bin/env python3
"""Time to accuracy of the default ("fast") recipes, and the paper's.

For each model and seed it runs the command a user runs, in its own
process and one at a time:

    kerascnn fit MODEL --seed S [--recipe paper] --log-format json

(with the run and the export in a temporary folder), and times it from
start to exit: start-up, data loading, training, the test evaluation and
the verified export. From the run's history it reads the test accuracy
after each epoch (the recipes validate on the test split; with weight
averaging these are the raw weights, the final number is the averaged,
exported model's) and reports, per run: the final test accuracy, the
first epoch at or above the model's target and the seconds to the end of
that epoch, the whole wall time and the epoch seconds; per model: the mean
and spread over seeds. One JSON object on stdout, with the CPU flags, the
core count and the load average before and after (the machine may be
shared: say so next to the numbers). `--plot FILE` draws the curves
(test accuracy per epoch, every seed; fast solid, paper dashed) as one
picture.

    python benchmarks/recipes.py --data-dir ../shared/data --models lenet \\
        --seeds 0 1 2 --paper --paper-seeds 0 --plot docs/recipe_curves.png

Check that it runs (short, not a measurement):

    python benchmarks/recipes.py --data-dir ../shared/data --models lenet \\
        --seeds 0 --epochs 1 --limit 2000 --paper --plot /tmp/curves.png
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The goals: test accuracy a default recipe must reach.
TARGETS = {"lenet": 0.994, "simple_convnet": 0.994, "resnet20": 0.91,
           "resnet56": 0.91}  # fmt: skip
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            words = set(f.read().split())
    except OSError:
        return []
    return [flag for flag in FLAGS if flag in words]


def timed_run(cmd, workdir, timeout):
    """`(CompletedProcess, wall seconds)` of a `kerascnn` command run with
    this checkout on the path; exits with its stderr when it fails."""
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    start = time.perf_counter()
    done = subprocess.run(
        cmd, cwd=workdir, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return done, wall


def run_fit(model, seed, recipe, args, workdir):
    """One `kerascnn fit` process; returns its measurements."""
    run_dir = os.path.join(workdir, f"{model}-{recipe}-{seed}")
    cmd = [
        sys.executable, "-m", "cli.main", "fit", model, "--seed", str(seed),
        "--recipe", recipe, "--log-format", "json", "--run-dir", run_dir,
        "--export-dir", os.path.join(workdir, "saved_models"),
        "--export-name", f"{model}-{recipe}-{seed}",
    ]  # fmt: skip
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    for flag in ("epochs", "limit"):
        if getattr(args, flag):
            cmd += [f"--{flag}", str(getattr(args, flag))]
    done, wall = timed_run(cmd, workdir, args.timeout)
    with open(os.path.join(run_dir, "history.json")) as f:
        history = json.load(f)
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    curve = [round(float(a), 4) for a in history.get("val_accuracy", [])]
    seconds = [round(float(s), 2) for s in metrics.get("epoch_seconds", [])]
    target = TARGETS.get(model)
    hit = next(
        (i + 1 for i, acc in enumerate(curve) if target and acc >= target),
        None,
    )
    return {
        "seed": seed,
        "test_accuracy": metrics["accuracy"],
        "epochs": len(curve),
        "epochs_to_target": hit,
        "train_seconds_to_target": round(sum(seconds[:hit]), 1)
        if hit
        else None,
        "wall_seconds": round(wall, 1),
        "epoch_seconds": seconds,
        "test_accuracy_per_epoch": curve,
        "exported": bool(json.loads(done.stdout.splitlines()[-1])["export"]),
    }


def summarize(runs):
    accs = [r["test_accuracy"] for r in runs]
    walls = [r["wall_seconds"] for r in runs]
    return {
        "test_accuracy_mean": round(statistics.mean(accs), 5),
        "test_accuracy_std": round(statistics.stdev(accs), 5)
        if len(accs) > 1
        else 0.0,
        "test_accuracy_min": min(accs),
        "wall_seconds_median": round(statistics.median(walls), 1),
        "wall_seconds_max": max(walls),
    }


def _runs(result, model):
    """Every curve of `model` in `result`, all recipes."""
    return [
        run["test_accuracy_per_epoch"]
        for recipe in result["models"][model].values()
        for run in recipe["runs"]
    ]


def plot(result, path):
    sys.path.insert(0, REPO)
    from kerascnn.visualize._figure import new_figure, save_png

    models = list(result["models"])
    fig = new_figure(520 * len(models), 400)
    for i, model in enumerate(models):
        ax = fig.add_subplot(1, len(models), i + 1)
        for recipe, style in (("fast", "-"), ("paper", "--")):
            for run in result["models"][model].get(recipe, {}).get("runs", []):
                curve = run["test_accuracy_per_epoch"]
                ax.plot(
                    range(1, len(curve) + 1), [100 * a for a in curve], style,
                    marker=".", label=f"{recipe}, seed {run['seed']}",
                )  # fmt: skip
        target = TARGETS.get(model)
        if target:
            ax.axhline(100 * target, color="grey", linewidth=0.8)
        ax.set_title(f"{model}: test accuracy per epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (%)")
        if target:  # the region around the target; early epochs clip
            top = max(
                [100 * (target + 0.002)]
                + [100 * a for r in _runs(result, model) for a in r]
            )
            ax.set_ylim(100 * (target - 0.02), top + 0.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_png(fig, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["lenet"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--paper",
        action="store_true",
        help="Also run --recipe paper.",
    )
    parser.add_argument(
        "--paper-seeds",
        nargs="+",
        type=int,
        help="Seeds of the paper runs (default: --seeds).",
    )
    parser.add_argument("--data-dir", default=os.environ.get(
        "KERASCNN_DATA_DIR"))  # fmt: skip
    parser.add_argument("--epochs", type=int, help="Override (checks only).")
    parser.add_argument("--limit", type=int, help="Override (checks only).")
    parser.add_argument("--timeout", type=int, default=4 * 3600)
    parser.add_argument("--plot", help="PNG of the curves.")
    parser.add_argument(
        "--replot", help="Only draw --plot from this script's JSON output."
    )
    args = parser.parse_args()
    if args.replot:
        with open(args.replot) as f:
            plot(json.load(f), args.plot)
        return

    result = {
        "cpu_flags": cpu_flags(),
        "cores": len(os.sched_getaffinity(0)),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "overrides": {"epochs": args.epochs, "limit": args.limit},
        "targets": {m: TARGETS.get(m) for m in args.models},
        "models": {},
    }
    recipes = ["fast", "paper"] if args.paper else ["fast"]
    with tempfile.TemporaryDirectory(prefix="recipes-") as workdir:
        for model in args.models:
            result["models"][model] = {}
            for recipe in recipes:
                runs = []
                seeds = args.seeds
                if recipe == "paper" and args.paper_seeds:
                    seeds = args.paper_seeds
                for seed in seeds:
                    log(f"{model} --recipe {recipe} --seed {seed} ...")
                    run = run_fit(model, seed, recipe, args, workdir)
                    log(f"  test {run['test_accuracy']:.4f}, "
                        f"{run['wall_seconds']} s")  # fmt: skip
                    runs.append(run)
                result["models"][model][recipe] = {
                    **summarize(runs), "runs": runs,
                }  # fmt: skip
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    if args.plot:
        plot(result, args.plot)
        result["plot"] = args.plot
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
