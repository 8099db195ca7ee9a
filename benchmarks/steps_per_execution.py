#!/usr/bin/env python3
"""In-process A/B of `steps_per_execution` values for one recipe.

One process builds one compiled model per value on the same training
dataset (the recipe's pipeline and precision), traces each with one
epoch, then times `--rounds` epochs of each, interleaved (the order
rotates every round). Reports median images/s by wall clock and by the
process's CPU time: on a shared, noisy machine the CPU-time rate still
shows how much Python work a value saves. Prints one JSON object.

    python benchmarks/steps_per_execution.py --model lenet --limit 10000 \\
        --rounds 6 --values 1,2,4,8,16
"""

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="lenet")
    p.add_argument("--data-dir", default=os.environ.get("KERASCNN_DATA_DIR"))
    p.add_argument("--limit", type=int, default=10000)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--values", default="1,2,4,8,16")
    p.add_argument("--mixed-precision", default="auto")
    args = p.parse_args(argv)
    sys.path.insert(0, REPO)
    from kerascnn import hardware, train
    from kerascnn.config import recipe_for

    values = [int(v) for v in args.values.split(",")]
    config = train.resolve_precision(
        recipe_for(
            args.model,
            data_dir=args.data_dir,
            limit=args.limit,
            mixed_precision=args.mixed_precision,
        )
    )
    train._setup(config)
    ds, _, info = train.load_data(config)
    steps = -(-info.num_examples // config.batch_size)
    models = {}
    for value in values:
        c = dataclasses.replace(config, steps_per_execution=value)
        models[value] = train.build_model(c, info)
        train.compile_model(models[value], c, info, steps)
        models[value].fit(ds, epochs=1, verbose=0)  # trace
    wall = {v: [] for v in values}
    cpu = {v: [] for v in values}
    for r in range(args.rounds):
        for v in values[r % len(values) :] + values[: r % len(values)]:
            w, c = time.perf_counter(), time.process_time()
            models[v].fit(ds, epochs=1, verbose=0)
            wall[v].append(time.perf_counter() - w)
            cpu[v].append(time.process_time() - c)
    n = info.num_examples
    print(
        json.dumps(
            {
                "benchmark": "steps_per_execution",
                "model": args.model,
                "precision": config.mixed_precision,
                "n_train": n,
                "rounds": args.rounds,
                "machine": hardware.describe(),
                "loadavg": os.getloadavg()[0],
                "median_wall_images_per_s": {
                    v: round(n / statistics.median(s)) for v, s in wall.items()
                },
                "median_cpu_images_per_s": {
                    v: round(n / statistics.median(s)) for v, s in cpu.items()
                },
                "wall_images_per_s": {
                    v: [round(n / x) for x in s] for v, s in wall.items()
                },
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
