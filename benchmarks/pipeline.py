"""Input pipeline throughput vs. the training throughput it must feed.

Prints one JSON object: images/s of `kerascnn.data.load` alone (MNIST,
batch 128; CIFAR-10 JPEG folder with augmentation, batch 128), images/s of
training the consuming model on in-memory arrays (LeNet with Adam on MNIST,
ResNet-20 with SGD on CIFAR-10), and their ratio (goal: >= 5).

    python benchmarks/pipeline.py --data-dir ../shared/data --repeats 3
"""

import argparse
import json
import os
import statistics
import time

BATCH = 128


def pipeline_rate(name, data_dir, batches, repeats):
    """Median images/s over `repeats` runs of `batches` batches."""
    from kerascnn.data import load

    ds, info = load(
        name, "train", data_dir=data_dir, batch_size=BATCH, repeat=True
    )
    it = iter(ds)
    for _ in range(20):  # warm-up: tracing, autotune, buffers
        next(it)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(batches):
            next(it)
        rates.append(batches * BATCH / (time.perf_counter() - start))
    return statistics.median(rates), info


def training_rate(model_name, info, optimizer, steps, repeats):
    """Median images/s of `model.fit` on in-memory random arrays."""
    import keras
    import numpy as np

    from kerascnn.models import build

    model = build(
        model_name, input_shape=info.input_shape, num_classes=info.num_classes
    )
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    n = steps * BATCH
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n,) + tuple(info.input_shape)).astype("float32")
    y = rng.integers(0, info.num_classes, n).astype("int32")
    model.fit(x[: 5 * BATCH], y[: 5 * BATCH], batch_size=BATCH, verbose=0)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
        rates.append(n / (time.perf_counter() - start))
    keras.backend.clear_session()
    return statistics.median(rates)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", default=os.environ.get("KERASCNN_DATA_DIR"),
        help="Folder with mnist/ and cifar10/ (default: $KERASCNN_DATA_DIR).",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--lenet-steps", type=int, default=100)
    parser.add_argument("--resnet-steps", type=int, default=10)
    args = parser.parse_args()

    import keras

    result = {"batch_size": BATCH, "repeats": args.repeats}
    t0 = time.perf_counter()
    mnist, mnist_info = pipeline_rate(
        "mnist", args.data_dir, args.batches, args.repeats
    )
    result["mnist_setup_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    cifar, cifar_info = pipeline_rate(
        "cifar10", args.data_dir, args.batches, args.repeats
    )
    result["cifar10_setup_s"] = round(time.perf_counter() - t0, 1)
    lenet = training_rate(
        "lenet", mnist_info, "adam", args.lenet_steps, args.repeats
    )
    resnet = training_rate(
        "resnet20", cifar_info, keras.optimizers.SGD(0.1, momentum=0.9),
        args.resnet_steps, args.repeats,
    )  # fmt: skip
    result.update(
        mnist_pipeline_img_s=round(mnist),
        lenet_train_img_s=round(lenet),
        mnist_ratio=round(mnist / lenet, 1),
        cifar10_aug_pipeline_img_s=round(cifar),
        resnet20_train_img_s=round(resnet),
        cifar10_ratio=round(cifar / resnet, 1),
        goal_ratio=5,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
