#!/usr/bin/env python3
"""Small image folders: what the default `kerascnn fit` reaches, and how
long it takes (issue 27's goals).

Builds, from the CIFAR-10 training photos in `--data-dir`, a flat
`<class>/` folder of `--per-class` photos per class for each class triple
in `--classes`, resized to mixed sizes (a seeded pick of 32-256 px sides
and 3:4 / 1:1 / 4:3 aspect ratios, re-encoded as JPEG, as photos from
different sources are), then runs the command a user runs, one at a
time, in its own process:

    kerascnn fit MODEL -d FOLDER --seed S --log-format json \\
        [--weights RUN] [--no-export]

and times it from start to exit (start-up, listing, decoding, training,
the final evaluation and, unless `--no-export`, the verified export).
The folder has no test split, so `fit` holds out 20% (seeded) and scores
the held-out split: that accuracy is the figure. Per run: held-out
accuracy, wall seconds, epochs and the median epoch seconds; per folder
and start (from scratch, or `--weights`): the mean over seeds. One JSON
object on stdout with the CPU flags and the load average before and
after (say so when the machine was shared).

    python benchmarks/small_data.py --data-dir ../shared/data \\
        --classes cat,dog,frog airplane,automobile,bird --seeds 0 1

    # from a run trained on the other seven classes (docs/your-own-images.md)
    python benchmarks/small_data.py --data-dir ../shared/data \\
        --classes cat,dog,frog --seeds 0 1 --weights runs/other7

Check that it runs (short, not a measurement):

    python benchmarks/small_data.py --data-dir ../shared/data \\
        --classes cat,dog --per-class 10 --seeds 0 --epochs 1
"""

import argparse
import json
import os
import random
import statistics
import sys
import tempfile

from recipes import cpu_flags, log, timed_run  # the benchmark beside

SIDES = (32, 32, 48, 64, 96, 160, 256)
ASPECTS = (1.0, 0.75, 4 / 3)


def make_folder(data_dir, classes, per_class, start, root):
    """`root/<class>/NNNN.jpg`: `per_class` CIFAR-10 training photos per
    class from index `start`, each at a seeded mixed size."""
    from PIL import Image

    rng = random.Random(0)
    for name in classes:
        source = os.path.join(data_dir, "cifar10", "train", name)
        files = sorted(os.listdir(source))[start : start + per_class]
        os.makedirs(os.path.join(root, name))
        for i, file in enumerate(files):
            image = Image.open(os.path.join(source, file)).convert("RGB")
            side = rng.choice(SIDES)
            size = (side, round(side * rng.choice(ASPECTS)))
            image.resize(size, Image.BICUBIC).save(
                os.path.join(root, name, f"{i:04d}.jpg"), quality=90
            )
    return root


def run_fit(folder, seed, args, workdir, tag):
    run_dir = os.path.join(workdir, f"{tag}-{seed}")
    cmd = [
        sys.executable, "-m", "cli.main", "fit", args.model, "-d", folder,
        "--seed", str(seed), "--log-format", "json", "--run-dir", run_dir,
        "--export-dir", os.path.join(workdir, "saved_models"),
        "--export-name", f"{tag}-{seed}",
    ]  # fmt: skip
    if args.weights:
        cmd += ["--weights", args.weights]
    if args.epochs:
        cmd += ["--epochs", str(args.epochs)]
    if args.no_export:
        cmd += ["--no-export"]
    done, wall = timed_run(cmd, workdir, args.timeout)
    with open(os.path.join(run_dir, "metrics.json")) as f:
        metrics = json.load(f)
    notes = [n for n in done.stderr.splitlines() if n.startswith("note:")]
    seconds = metrics.get("epoch_seconds", [])
    return {
        "seed": seed,
        "held_out_accuracy": metrics["accuracy"],
        "held_out_examples": metrics.get("num_examples"),
        "wall_s": round(wall, 1),
        "epochs": len(seconds),
        "median_epoch_s": round(statistics.median(seconds), 2)
        if seconds
        else None,
        "recipe_note": next((n for n in notes if "recipe" in n), None),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument(
        "--classes", nargs="+", default=["cat,dog,frog"],
        help="Comma-separated class triples, one folder each.",
    )  # fmt: skip
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument(
        "--start", type=int, default=0,
        help="First CIFAR-10 training photo of each class.",
    )  # fmt: skip
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--weights", help="--weights for fit (a run).")
    parser.add_argument("--epochs", type=int, help="Override (a check).")
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()

    load_before = os.getloadavg()
    out = {
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "load_before": [round(x, 2) for x in load_before],
        "model": args.model,
        "weights": args.weights,
        "export": not args.no_export,
        "folders": [],
    }
    with tempfile.TemporaryDirectory() as workdir:
        for triple in args.classes:
            classes = triple.split(",")
            tag = "-".join(classes)
            folder = make_folder(
                args.data_dir, classes, args.per_class, args.start,
                os.path.join(workdir, tag),
            )  # fmt: skip
            runs = []
            for seed in args.seeds:
                log(f"{tag} seed {seed}...")
                runs.append(run_fit(folder, seed, args, workdir, tag))
                log(f"  {runs[-1]}")
            accuracies = [r["held_out_accuracy"] for r in runs]
            out["folders"].append({
                "classes": classes,
                "images": args.per_class * len(classes),
                "runs": runs,
                "mean_held_out_accuracy": round(
                    statistics.mean(accuracies), 4
                ),
                "mean_wall_s": round(
                    statistics.mean(r["wall_s"] for r in runs), 1
                ),
            })  # fmt: skip
    out["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
