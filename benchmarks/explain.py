"""Explain benchmark: seconds to explain one image, per method and model.

    python benchmarks/explain.py [--models lenet resnet20] [--repeats 5]

For LeNet (28x28x1) and ResNet-20 (32x32x3) it builds the model, then
times `kerascnn.visualize.Explainer.explain` on one image for each method
(Grad-CAM, Grad-CAM++, integrated gradients with `--steps` steps in
batches of `--batch-size`, SmoothGrad with `--samples` samples). It prints
one JSON line per (model, method): the first call (gradient model built
and traced) and the median of `--repeats` warm calls, in seconds, with
the goal (LeNet <= 1 s, ResNet-20 <= 3 s) and the CPU flags. The weights
do not change the cost, so the models are not trained.
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import kerascnn  # noqa: E402,F401  (TensorFlow flags before TF)

GOALS = {"lenet": 1.0, "resnet20": 3.0}


def _time(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(name, repeats, options):
    import numpy as np

    from kerascnn.hardware import cpu_flags
    from kerascnn.models import build
    from kerascnn.visualize import METHODS, Explainer

    model = build(name)
    image = np.random.default_rng(0).random(
        (1, *model.input_shape[1:]), np.float32
    )
    flags = sorted(
        set(cpu_flags()) & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}
    )
    for method in METHODS:
        kwargs = {} if method in ("gradcam", "gradcam++") else options
        if method == "smoothgrad":
            kwargs = {k: options[k] for k in ("samples", "batch_size")}
        if method == "integrated-gradients":
            kwargs = {k: options[k] for k in ("steps", "batch_size")}
        first = _time(lambda: Explainer(model).explain(image, method, **kwargs))
        explainer = Explainer(model)
        warm = [
            _time(lambda: explainer.explain(image, method, **kwargs))
            for _ in range(repeats)
        ]
        seconds = statistics.median(warm)
        print(json.dumps({
            "model": name,
            "method": method,
            "first_call_s": round(first, 3),
            "warm_median_s": round(seconds, 3),
            "goal_s": GOALS.get(name),
            "meets_goal": seconds <= GOALS.get(name, float("inf")),
            **kwargs,
            "cpu_flags": flags,
            "threads": os.cpu_count(),
        }), flush=True)  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(GOALS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--samples", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    options = {
        "steps": args.steps,
        "samples": args.samples,
        "batch_size": args.batch_size,
    }
    for name in args.models:
        bench(name, args.repeats, options)


if __name__ == "__main__":
    main()
