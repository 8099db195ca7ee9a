"""Export benchmark: TFLite int8 size/accuracy; latency in four runtimes.

    python benchmarks/export.py [--models lenet resnet20] [--run-dir M=DIR]
    python benchmarks/export.py --latency-only   # the runtime table only

For each model (LeNet on MNIST, ResNet-20 on CIFAR-10) it takes a run
directory or trains one briefly (`--epochs` on `--train-limit` examples),
exports a SavedModel, a float TFLite and an int8 TFLite (calibrated on
real training images), and prints JSON with:

* `int8_size_ratio`: int8 file / float32 file (goal <= 0.27);
* `int8_accuracy_drop_pp`: Keras minus int8 accuracy on `--examples` real
  test images, percentage points (goal <= 0.5);
* `latency_ratio`: TFLite float batch-1 latency (LiteRT, XNNPACK) /
  SavedModel `serving_default` batch-1 latency in Python (goal <= 0.5);
* `latency`: median batch-1 and batch-32 milliseconds of the SavedModel
  (TensorFlow), the float TFLite file (LiteRT; its input is batch 1, so
  batch 32 is 32 calls), the ONNX file (ONNX Runtime, CPU) and the
  OpenVINO IR (CPU, f32), measured in the same process on the same real
  test images, with each runtime's ratio to the SavedModel (goal: ONNX
  Runtime batch-1 LeNet <= 0.25x). Runtimes whose extra is not installed
  (`kerascnn[onnx]`, `kerascnn[openvino]`) are left out.

Data come from `kerascnn.data.load` (`--data-dir` or `$KERASCNN_DATA_DIR`).
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MODELS = {
    "lenet": {"dataset": "mnist", "build": {}},
    "resnet20": {"dataset": "cifar10", "build": {}},
}


def _arrays(dataset, split, limit, data_dir, shuffle=False):
    import numpy as np

    from kerascnn.data import load

    ds, info = load(
        dataset,
        split,
        data_dir=data_dir,
        batch_size=256,
        limit=limit,
        shuffle=shuffle,
        augment=False,
        seed=0,
    )
    xs, ys = zip(*ds.as_numpy_iterator())
    return np.concatenate(xs), np.concatenate(ys), info


def train_run(name, args, out_dir):
    """Trains `name` briefly on real data; returns a run directory."""
    import keras

    from kerascnn import models
    from kerascnn.metadata import ModelMetadata

    dataset = MODELS[name]["dataset"]
    x, y, info = _arrays(
        dataset, "train", args.train_limit, args.data_dir, shuffle=True
    )
    keras.utils.set_random_seed(0)
    model = models.build(
        name, input_shape=info.input_shape, num_classes=info.num_classes
    )
    model.compile(
        "adam", "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    start = time.perf_counter()
    model.fit(x, y, epochs=args.epochs, batch_size=64, verbose=0)
    seconds = time.perf_counter() - start
    run = os.path.join(out_dir, f"run-{name}")
    os.makedirs(run)
    model.save(os.path.join(run, "model.keras"))
    ModelMetadata(
        model=name,
        dataset=dataset,
        input_shape=info.input_shape,
        class_names=list(info.class_names),
        preprocessing=info.preprocessing,
        extra={
            "benchmark_training": {
                "epochs": args.epochs,
                "examples": len(x),
                "seconds": round(seconds, 1),
            }
        },
    ).save(os.path.join(run, "metadata.json"))
    return run


def export(run, **settings):
    """`kerascnn.export.export` with the run's task, as `kerascnn export`
    resolves it (the export package never looks a task up)."""
    from kerascnn import export as export_package
    from kerascnn import tasks

    return export_package.export(run, task=tasks.task_of(run), **settings)


def bench_model(name, run, args, out_dir):
    dataset = MODELS[name]["dataset"]
    test = _arrays(dataset, "test", args.examples, args.data_dir, shuffle=True)[
        :2
    ]
    calibration = _arrays(
        dataset, "train", args.calibration_examples, args.data_dir, shuffle=True
    )[0]
    base = os.path.join(out_dir, "saved_models")
    common = dict(base_dir=base, examples=test, max_accuracy_drop=100.0)
    saved = export(run, **common)
    flt = export(run, format="tflite", **common)
    q8 = export(
        run,
        format="tflite",
        quantize="int8",
        calibration_data=calibration,
        **common,
    )
    sm_lat = saved.verification.artifact.latency_ms
    fl_lat = flt.verification.artifact.latency_ms
    return {
        "model": name,
        "dataset": dataset,
        "test_examples": len(test[0]),
        "keras_accuracy": saved.verification.keras.accuracy,
        "saved_model": saved.verification.artifact.to_dict(),
        "tflite_float32": flt.verification.artifact.to_dict(),
        "tflite_int8": q8.verification.artifact.to_dict(),
        "int8_size_ratio": round(q8.size_bytes / flt.size_bytes, 4),
        "int8_accuracy_drop_pp": round(q8.verification.accuracy_drop, 3),
        "latency_ratio": round(fl_lat / sm_lat, 4),
        "goals_met": {
            "int8_size_ratio<=0.27": q8.size_bytes / flt.size_bytes <= 0.27,
            "int8_accuracy_drop<=0.5pp": q8.verification.accuracy_drop <= 0.5,
            "tflite_latency<=0.5x_saved_model": fl_lat / sm_lat <= 0.5,
        },
    }


def _runners(run, base, test):
    """`{runtime: run(x)}` of every format exported from `run`."""
    from kerascnn.export import formats, verify

    common = dict(base_dir=base, examples=test, overwrite=True)
    runners = {
        "saved_model": verify.saved_model_runner(export(run, **common).path)
    }
    with open(export(run, format="tflite", **common).path, "rb") as f:
        runners["tflite"] = verify.tflite_runner(f.read())
    for fmt in (f.name for f in formats.all_formats() if f.extra):
        try:
            result = export(run, format=fmt, **common)
        except Exception as e:  # extra not installed
            print(f"skipping {fmt}: {e}", file=sys.stderr)
            continue
        if fmt == "onnx":
            with open(result.path, "rb") as f:
                runners["onnx_runtime"] = verify.onnx_runner(f.read())
        else:
            runners["openvino"] = verify.openvino_runner(result.path)
    return runners


def _median_ms(fn, x, repeats):
    import numpy as np

    fn(x)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def bench_latency(name, run, args, out_dir):
    """Batch-1 and batch-32 latency per runtime, and ratios to SavedModel."""
    dataset = MODELS[name]["dataset"]
    x, y = _arrays(dataset, "test", 256, args.data_dir, shuffle=False)[:2]
    runners = _runners(run, os.path.join(out_dir, "latency_models"), (x, y))
    table = {}
    for runtime, fn in runners.items():
        table[runtime] = {
            f"batch{b}_ms": round(_median_ms(fn, x[:b], args.repeats), 4)
            for b in (1, 32)
        }
    base = table["saved_model"]
    for row in table.values():
        for b in (1, 32):
            row[f"batch{b}_vs_saved_model"] = round(
                row[f"batch{b}_ms"] / base[f"batch{b}_ms"], 4
            )
    result = {"model": name, "runtimes": table, "repeats": args.repeats}
    if "onnx_runtime" in table:
        ratio = table["onnx_runtime"]["batch1_vs_saved_model"]
        result["goal_ort_batch1<=0.25x_saved_model"] = ratio <= 0.25
    return result


def _load_average():
    try:
        return os.getloadavg()
    except OSError:
        return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--models", nargs="+", default=list(MODELS), choices=list(MODELS)
    )
    p.add_argument(
        "--run-dir",
        action="append",
        default=[],
        metavar="MODEL=DIR",
        help="use a trained run directory",
    )
    p.add_argument("--data-dir", default=None)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-limit", type=int, default=10000)
    p.add_argument(
        "--examples", type=int, default=2000, help="test examples for accuracy"
    )
    p.add_argument("--calibration-examples", type=int, default=500)
    p.add_argument(
        "--repeats",
        type=int,
        default=50,
        help="timed calls per runtime and batch size",
    )
    p.add_argument(
        "--latency-only",
        action="store_true",
        help="only the four-runtime latency table",
    )
    args = p.parse_args(argv)
    runs = dict(item.split("=", 1) for item in args.run_dir)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results, latency = [], []
    with tempfile.TemporaryDirectory() as out_dir:
        for name in args.models:
            run = runs.get(name) or train_run(name, args, out_dir)
            if not args.latency_only:
                results.append(bench_model(name, run, args, out_dir))
            latency.append(bench_latency(name, run, args, out_dir))
    print(
        json.dumps(
            {
                "results": results,
                "latency": latency,
                "cpu_count": os.cpu_count(),
                "load_average_before_exit": _load_average(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
