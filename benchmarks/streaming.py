"""Data at scale: 224 px input throughput and bounded memory. Prints JSON.

1. Throughput: images/s of `kerascnn.data.load` on a training split at
   224 px in the ImageNet style (read + decode + random-resized crop +
   flip + normalize, batch 128, no model), from a JPEG folder and from
   TFRecord shards of the same images (their JPEG bytes), and from
   raw-pixel shards (`--encoding raw`: nothing to decode); next to it
   ResNet-50's training
   consumption (images/s of `fit` on in-memory random 224 px batches), so
   the ratio shows whether training could ever be input-bound.
   Goals: >= 800 img/s from the folder on 2 cores, >= 1.5x that from
   shards. Measured twice: with the files in the page cache, and cold
   (evicted before each repeat, as a set larger than memory is read).
2. Memory and start-up: for each N in `--sizes`, a fresh process does
   what `kerascnn fit resnet18 --dataset FOLDER --input-shape 224,224,3
   --batch-size 32` does (`kerascnn.training_data.load_data`, the registry
   model, the recipe's optimizer) and trains `--steps` steps; it reports
   the time from process start to the end of the first step and its peak
   RSS.
   Goals: peak RSS +<= 300 MB from the smallest to the largest N, < 3 GB,
   first step < 15 s.

The folder holds `--images` real CIFAR-10 training images upscaled to
224x224 JPEG (quality 90) under `--work` (kept between runs); a folder of
N > `--images` files links to them cyclically (own names, so listing,
indices and reads are those of N files; the page cache is shared).

    python benchmarks/streaming.py --data-dir ../shared/data \\
        --work /tmp/kerascnn-bench --sizes 2500,40000
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

BATCH = 128
SIZE = 224


# ======================== Data ========================


def real_folder(data_dir, work, count):
    """`work/real/{train,test}/<class>/*.jpg` of real CIFAR-10 images."""
    from PIL import Image

    root = os.path.join(work, "real")
    if os.path.isdir(root):
        return root
    partial = root + ".partial"
    src = os.path.join(data_dir, "cifar10")
    classes = sorted(os.listdir(os.path.join(src, "train")))
    for split, n in (("train", count), ("test", max(10, count // 25))):
        for c in classes:
            os.makedirs(os.path.join(partial, split, c), exist_ok=True)
            names = sorted(os.listdir(os.path.join(src, split, c)))
            for name in names[: n // len(classes)]:
                image = Image.open(os.path.join(src, split, c, name))
                image = image.resize((SIZE, SIZE), Image.BILINEAR)
                image.save(os.path.join(partial, split, c, name), quality=90)
    os.rename(partial, root)
    return root


def linked_folder(real, work, n):
    """A folder of `n` training images linking cyclically to `real`'s."""
    root = os.path.join(work, f"n{n}")
    if os.path.isdir(root):
        return root
    partial = root + ".partial"
    train = os.path.join(real, "train")
    classes = sorted(os.listdir(train))
    per_class = n // len(classes)
    for c in classes:
        files = sorted(os.listdir(os.path.join(train, c)))
        os.makedirs(os.path.join(partial, "train", c))
        for k in range(per_class):
            os.symlink(
                os.path.join(train, c, files[k % len(files)]),
                os.path.join(partial, "train", c, f"{k:07d}.jpg"),
            )
    os.symlink(os.path.join(real, "test"), os.path.join(partial, "test"))
    os.rename(partial, root)
    return root


def shard_set(real, work, shards, encoding="original"):
    from kerascnn.data.convert import convert

    tag = "" if encoding == "original" else f"-{encoding}"
    out = os.path.join(work, f"shards{shards}{tag}")
    if not os.path.isdir(out):
        convert(real, out, shards=shards, encoding=encoding)
    return out


def folder_bytes(root):
    """Bytes of the files under `root` (links followed)."""
    return sum(
        os.path.getsize(os.path.join(folder, name))
        for folder, _, names in os.walk(root) for name in names
    )  # fmt: skip


# ======================== Throughput ========================


def input_rate(name, batches, repeats, cold=False):
    """Median images/s of the 224 px ImageNet-style training stream.

    `cold`: the set's files are evicted from the page cache before each
    repeat (`posix_fadvise(DONTNEED)`), as for a data set larger than
    memory, whose every epoch comes from the disk.
    """
    from kerascnn.data import load

    ds, info = load(name, "train", batch_size=BATCH, image_size=(SIZE, SIZE),
                    repeat=True)  # fmt: skip
    it = iter(ds)
    for _ in range(3):  # warm-up: tracing, buffers
        next(it)
    rates = []
    for _ in range(repeats):
        if cold:
            evict_from_page_cache(name)
        start = time.perf_counter()
        for _ in range(batches):
            next(it)
        rates.append(batches * BATCH / (time.perf_counter() - start))
    return statistics.median(rates), info


def evict_from_page_cache(root):
    """Drops every file under `root` from the page cache (no root needed)."""
    for folder, _, names in os.walk(root):
        for name in names:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fdatasync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def resnet50_rate(steps, batch=32):
    """Images/s of ResNet-50 training at 224 px on random batches."""
    import keras
    import numpy as np

    from kerascnn.models import build

    model = build("resnet50", input_shape=(SIZE, SIZE, 3), num_classes=10)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss="sparse_categorical_crossentropy",
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, SIZE, SIZE, 3)).astype("float32")
    y = rng.integers(0, 10, batch).astype("int32")
    model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * batch / (time.perf_counter() - start)


# ======================== Memory and start-up ========================


def child_fit(folder, steps, started):
    """In a fresh process: `fit`'s data and model, `steps` steps."""
    import keras

    from kerascnn import train
    from kerascnn.config import recipe_for
    from kerascnn.training_data import load_data

    config = recipe_for(
        "resnet18", dataset=folder, batch_size=32, epochs=1,
        log_format="quiet", run_dir=os.devnull,
    )  # fmt: skip
    config = train.resolve_precision(config)
    train._setup(config)
    train_ds, _, info = load_data(config)
    model = train.build_model(config, info)
    train.compile_model(model, config, info, steps)
    first = []

    class FirstStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if not first:
                first.append(time.time() - started)

    model.fit(train_ds, epochs=1, steps_per_epoch=steps, verbose=0,
              callbacks=[FirstStep()])  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "images": info.num_examples, "storage": info.storage,
        "first_step_s": round(first[0], 1), "peak_rss_mb": round(peak),
    }))  # fmt: skip


def run_child(folder, steps):
    out = subprocess.run(
        [sys.executable, __file__, "--child-fit", folder, "--steps",
         str(steps), "--started", repr(time.time())],
        capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode:
        return {"folder": folder, "error": out.stderr[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


# ======================== Main ========================


def _cpu_flags():
    flags = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    with open("/proc/cpuinfo") as f:
        words = set(f.read().split())
    return [f for f in flags if f in words]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", default=os.environ.get("KERASCNN_DATA_DIR"),
        help="Folder with cifar10/ (default: $KERASCNN_DATA_DIR).",
    )  # fmt: skip
    parser.add_argument("--work", default="/tmp/kerascnn-streaming-bench")
    parser.add_argument("--images", type=int, default=2500)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--resnet50-steps", type=int, default=3)
    parser.add_argument("--sizes", default="2500,40000")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--skip", default="", help="throughput and/or memory")
    parser.add_argument("--child-fit", help=argparse.SUPPRESS)
    parser.add_argument("--started", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import kerascnn  # noqa: F401  (sets TensorFlow's flags before its import)

    if args.child_fit:
        child_fit(args.child_fit, args.steps, args.started)
        return

    os.makedirs(args.work, exist_ok=True)
    real = real_folder(args.data_dir, args.work, args.images)
    result = {"cpus": len(os.sched_getaffinity(0)), "cpu_flags": _cpu_flags(),
              "load_average": os.getloadavg()}  # fmt: skip
    if "throughput" not in args.skip:
        shards = shard_set(real, args.work, args.shards)
        raw = shard_set(real, args.work, args.shards, encoding="raw")
        folder_rate, info = input_rate(real, args.batches, args.repeats)
        shard_rate, _ = input_rate(shards, args.batches, args.repeats)
        raw_rate, _ = input_rate(raw, args.batches, args.repeats)
        folder_cold, _ = input_rate(real, args.batches, args.repeats, True)
        shard_cold, _ = input_rate(shards, args.batches, args.repeats, True)
        raw_cold, _ = input_rate(raw, args.batches, args.repeats, True)
        consume = resnet50_rate(args.resnet50_steps)
        result["throughput"] = {
            "augmentation": info.augmentation,
            "folder_img_s": round(folder_rate),
            "shards_img_s": round(shard_rate),
            "shards_over_folder": round(shard_rate / folder_rate, 2),
            "raw_shards_img_s": round(raw_rate),
            "raw_shards_over_folder": round(raw_rate / folder_rate, 2),
            "cold_cache": {
                "folder_img_s": round(folder_cold),
                "shards_img_s": round(shard_cold),
                "shards_over_folder": round(shard_cold / folder_cold, 2),
                "raw_shards_img_s": round(raw_cold),
                "raw_shards_over_folder": round(raw_cold / folder_cold, 2),
            },
            "disk_mb": {
                name: round(folder_bytes(path) / 2**20, 1)
                for name, path in (
                    ("folder", os.path.join(real, "train")),
                    ("shards", os.path.join(shards, "train")),
                    ("raw_shards", os.path.join(raw, "train")),
                )
            },  # fmt: skip
            "resnet50_train_img_s": round(consume, 1),
            "folder_over_resnet50": round(folder_rate / consume, 1),
            # "1.5x that": of the folder's goal (1,200 img/s), or of
            # the folder's measured rate; both are printed.
            "goals": {
                "folder_img_s": 800,
                "shards_img_s": 1200,
                "shards_over_folder": 1.5,
            },
        }
    if "memory" not in args.skip:
        runs = []
        for n in (int(s) for s in args.sizes.split(",")):
            folder = real if n == args.images else linked_folder(
                real, args.work, n
            )  # fmt: skip
            runs.append(run_child(folder, args.steps))
        peaks = [r.get("peak_rss_mb", float("nan")) for r in runs]
        result["memory"] = {
            "runs": runs,
            "rss_growth_mb": peaks[-1] - peaks[0],
            "goals": {"rss_growth_mb": 300, "peak_rss_mb": 3000,
                      "first_step_s": 15},
        }  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
