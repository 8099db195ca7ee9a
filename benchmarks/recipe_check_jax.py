#!/usr/bin/env python3
"""Checks the ResNet-20 CIFAR-10 recipe end to end on a GPU with Keras' JAX
backend, for machines that have JAX but no TensorFlow.

`kerascnn fit resnet20` needs TensorFlow (tf.data input, tf.distribute).
The accuracy of a recipe, though, is a property of the model builder and
the recipe's values, which are backend-agnostic Keras: this script takes
both from kerascnn (`models.build("resnet20")`, `recipe_for("resnet20")`,
`train.make_optimizer`: SGD 0.1, momentum 0.9, weight decay 1e-4, batch
128, /10 at 50% and 75% of training) and reproduces the input pipeline's
per-image augmentation (zero-pad 4, random 32x32 crop, horizontal flip)
and standardization on the device. JAX compiles the whole step with XLA.

Two steps, because a GPU machine may not reach the data folder:

    # 1. here: pack the CIFAR-10 JPEG folder into one file (~55 MB)
    python benchmarks/recipe_check_jax.py pack ../shared/data/cifar10 \\
        .gpu/cifar10_jpeg.npz
    # 2. there (JAX + Keras 3 installed):
    KERAS_BACKEND=jax python benchmarks/recipe_check_jax.py train \\
        .gpu/cifar10_jpeg.npz --budget-seconds 420 --out history.json

`train` times a short warm-up and runs the paper's 164 epochs if they fit
in `--budget-seconds`; otherwise it runs as many epochs as fit, with the
same schedule shape (the steps at 50% and 75% of the shorter run), and
says so. It prints one JSON line with the per-epoch test accuracy.
"""

import argparse
import io
import json
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
           "horse", "ship", "truck")  # fmt: skip


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ================================ pack ================================


def pack(folder, out):
    """JPEG bytes of both splits in one `.npz` (no decoding, no pickles)."""
    arrays = {}
    for split in ("train", "test"):
        blobs, labels = [], []
        names = sorted(os.listdir(os.path.join(folder, split, CLASSES[0])))
        for name in names:  # class-interleaved, like the folder reader
            for label, cls in enumerate(CLASSES):
                path = os.path.join(folder, split, cls, name)
                if os.path.exists(path):
                    with open(path, "rb") as f:
                        blobs.append(f.read())
                    labels.append(label)
        sizes = np.array([len(b) for b in blobs], np.int64)
        arrays[f"{split}_bytes"] = np.frombuffer(b"".join(blobs), np.uint8)
        arrays[f"{split}_offsets"] = np.concatenate([[0], np.cumsum(sizes)])
        arrays[f"{split}_labels"] = np.array(labels, np.int32)
        log(f"{split}: {len(blobs)} images, {sizes.sum() / 1e6:.1f} MB")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    np.savez(out, **arrays)


def unpack(path, split):
    from PIL import Image

    z = np.load(path)
    data, offsets = z[f"{split}_bytes"], z[f"{split}_offsets"]
    images = np.stack([
        np.asarray(Image.open(io.BytesIO(data[a:b].tobytes())).convert("RGB"))
        for a, b in zip(offsets[:-1], offsets[1:])
    ])  # fmt: skip
    return images, z[f"{split}_labels"]


# ================================ train ===============================


def make_augment_layer(keras):
    from keras import ops

    class PadCropFlip(keras.layers.Layer):
        """Per-image zero-pad 4 + random crop + flip, in training only."""

        def __init__(self, pad=4, seed=0, **kwargs):
            super().__init__(**kwargs)
            self.pad = pad
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, x, training=None):
            if not training:
                return x
            b, h, w, p = ops.shape(x)[0], x.shape[1], x.shape[2], self.pad
            padded = ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
            off = keras.random.randint(
                (b, 2), 0, 2 * p + 1, seed=self.seed_generator
            )
            rows = off[:, 0, None] + ops.arange(h)[None]
            cols = off[:, 1, None] + ops.arange(w)[None]
            x = ops.take_along_axis(
                padded, rows[:, :, None, None], axis=1
            )  # (b, h, w + 2p, c)
            x = ops.take_along_axis(x, cols[:, None, :, None], axis=2)
            flip = keras.random.uniform((b,), seed=self.seed_generator) < 0.5
            return ops.where(flip[:, None, None, None], ops.flip(x, 2), x)

    return PadCropFlip


def train(args):
    import keras

    sys.path.insert(0, REPO)
    from kerascnn import models
    from kerascnn import train as kt
    from kerascnn.config import recipe_for
    from kerascnn.data.augment import PAD
    from kerascnn.data.preprocessing import CIFAR10_MEAN, CIFAR10_STD

    log("backend", keras.backend.backend(), "devices", _devices())
    t0 = time.time()
    x_train, y_train = unpack(args.pack, "train")
    x_test, y_test = unpack(args.pack, "test")
    if args.limit:  # smoke runs only
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
        x_test, y_test = x_test[: args.limit], y_test[: args.limit]
    decode_s = time.time() - t0
    log(f"decoded {len(x_train)}+{len(x_test)} images in {decode_s:.1f}s")

    recipe = recipe_for("resnet20", seed=args.seed)
    steps = -(-len(x_train) // recipe.batch_size)

    def build(epochs):
        keras.utils.set_random_seed(args.seed)
        config = recipe_for("resnet20", seed=args.seed, epochs=epochs)
        net = models.build("resnet20", input_shape=(32, 32, 3), num_classes=10)
        inputs = keras.Input((32, 32, 3))
        x = make_augment_layer(keras)(PAD, args.seed, name="augment")(inputs)
        x = keras.layers.Rescaling(1 / 255.0)(x)
        x = keras.layers.Normalization(
            mean=CIFAR10_MEAN, variance=np.square(CIFAR10_STD)
        )(x)
        model = keras.Model(inputs, net(x))
        model.compile(
            optimizer=kt.make_optimizer(config, steps),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model, config

    # Warm-up: compile, then time up to 100 steps.
    probe, _ = build(1)
    n_probe = min(len(x_train), recipe.batch_size * 100)
    probe_steps = -(-n_probe // recipe.batch_size)

    def probe_epoch():
        probe.fit(
            x_train[:n_probe], y_train[:n_probe],
            batch_size=recipe.batch_size, epochs=1, verbose=0,
        )  # fmt: skip

    probe_epoch()
    t = time.time()
    probe_epoch()
    step_s = (time.time() - t) / probe_steps
    epoch_s = step_s * steps * 1.05 + 0.3  # + evaluation every few epochs
    epochs = min(recipe.epochs, int((args.budget_seconds - 30) // epoch_s))
    epochs = max(1, epochs)
    log(f"{step_s * 1e3:.2f} ms/step -> {epochs} epochs fit the budget "
        f"(paper: {recipe.epochs})")  # fmt: skip

    model, config = build(epochs)
    history = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if "val_accuracy" in logs:
                history.append(
                    (epoch + 1, round(float(logs["val_accuracy"]), 4))
                )
                log(f"epoch {epoch + 1}/{epochs}: loss {logs['loss']:.4f} "
                    f"test acc {logs['val_accuracy']:.4f}")  # fmt: skip
                _save(
                    args.out,
                    {
                        "partial": True,
                        "epochs": epochs,
                        "test_accuracy_by_epoch": history,
                    },
                )

    t = time.time()
    model.fit(
        x_train, y_train, batch_size=config.batch_size, epochs=epochs,
        validation_data=(x_test, y_test), validation_freq=args.eval_every,
        shuffle=True, verbose=0, callbacks=[Record()],
    )  # fmt: skip
    train_s = time.time() - t
    _, test_acc = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    result = {
        "check": "resnet20 cifar10 recipe (keras jax backend)",
        "devices": _devices(),
        "epochs": epochs, "paper_epochs": recipe.epochs,
        "batch_size": config.batch_size, "optimizer": config.optimizer,
        "learning_rate": config.learning_rate,
        "weight_decay": config.weight_decay, "schedule": config.schedule,
        "final_test_accuracy": round(float(test_acc), 4),
        "test_accuracy_by_epoch": history,
        "train_seconds": round(train_s, 1),
        "decode_seconds": round(decode_s, 1),
        "ms_per_step": round(step_s * 1e3, 2),
        "images_per_s": round(len(x_train) * epochs / train_s, 1),
        "versions": {"keras": keras.__version__},
    }  # fmt: skip
    print(json.dumps(result), flush=True)
    _save(args.out, result)


def _save(path, data):
    """Writes `data` as JSON (after every evaluation, so a killed run keeps
    its curve)."""
    if path:
        with open(path, "w") as f:
            json.dump(data, f, indent=1)


def _devices():
    try:
        import jax

        return [str(d) for d in jax.devices()]
    except ImportError:
        return []


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pk = sub.add_parser("pack", help="pack the JPEG folder into one .npz")
    pk.add_argument("folder")
    pk.add_argument("out")
    tr = sub.add_parser("train", help="train ResNet-20 with the recipe")
    tr.add_argument("pack")
    tr.add_argument("--budget-seconds", type=float, default=420)
    tr.add_argument("--eval-every", type=int, default=4)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--limit", type=int, help="first N images (smoke runs)")
    tr.add_argument("--out")
    args = p.parse_args()
    if args.cmd == "pack":
        pack(args.folder, args.out)
    else:
        train(args)


if __name__ == "__main__":
    main()
