"""A third task that exists only in the test suite: counting bright squares.

Images of 0-4 white squares on black; the model regresses the count. It
is registered with `register_task` and `register_model` from outside the
library and then trained, evaluated and picked by a "min" checkpoint
monitor through the library's own `fit` and `evaluate`, which proves the
task seam: nothing in kerascnn knows this task.

Run as a script (a fresh process, so the registrations do not leak into
other tests): `python -m tests.tasks.counting RUN_DIR` prints JSON.
"""

import json
import sys

import numpy as np

from kerascnn import tasks
from kerascnn.models.registry import register_model

SIZE = 16
MAX_COUNT = 4


def counting_images(n, seed):
    """`(images (n, 16, 16, 1) float32 in [0, 1], counts (n,) float32)`."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, SIZE, SIZE, 1), np.float32)
    counts = rng.integers(0, MAX_COUNT + 1, n)
    for image, count in zip(images, counts):
        cells = rng.choice(16, count, replace=False)  # a 4x4 grid of cells
        for cell in cells:
            r, c = divmod(int(cell), 4)
            image[4 * r + 1 : 4 * r + 3, 4 * c + 1 : 4 * c + 3] = 1.0
    return images, counts.astype(np.float32)


class Counting(tasks.Task):
    name = "counting"
    input_rank = 3
    inputs = "images"
    checkpoint_monitor = "val_loss"
    checkpoint_mode = "min"
    pictures = frozenset({"curves"})

    def load_training_data(self, config, strategy=None):
        import tensorflow as tf

        from kerascnn.data import DatasetInfo

        def dataset(n, seed):
            x, y = counting_images(n, seed)
            return tf.data.Dataset.from_tensor_slices((x, y)).batch(
                config.batch_size
            )

        info = DatasetInfo(
            name=config.dataset,
            task=self.name,
            source="generated in the test",
            split="train",
            num_examples=config.limit or 512,
            split_sizes={"train": 512, "test": 256},
            input_shape=(SIZE, SIZE, 1),
            num_classes=1,
            class_names=["count"],
            preprocessing={},
        )
        train = dataset(info.num_examples, config.seed)
        return train, dataset(256, 1), info

    def loss_and_metrics(self, make_loss):
        return "mse", ["mae"]

    def evaluate(self, model, metadata, dataset, **options):
        x, y = counting_images(256, seed=2)
        predicted = np.asarray(model.predict(x, verbose=0)).ravel()
        return {
            "accuracy": float(np.mean(np.round(predicted) == y)),
            "mae": float(np.mean(np.abs(predicted - y))),
            "num_examples": len(y),
        }


tasks.register_task(Counting())


@register_model(
    default_input_shape=(SIZE, SIZE, 1),
    default_num_classes=1,
    reference="the kerascnn test suite",
    task="counting",
)
def square_counter(input_shape=(SIZE, SIZE, 1), num_classes=1):
    import keras

    inputs = keras.Input(input_shape, name="images")
    x = keras.layers.Conv2D(8, 2, strides=2, activation="relu", name="c1")(
        inputs
    )
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(32, activation="relu", name="fc")(x)
    outputs = keras.layers.Dense(num_classes, name="count", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="square_counter")


def main(run_dir):
    from kerascnn.config import recipe_for
    from kerascnn.evaluation import evaluate
    from kerascnn.train import fit

    config = recipe_for(
        "square_counter",
        dataset="counting-squares",
        epochs=12,
        batch_size=32,
        optimizer="adam",
        learning_rate=3e-3,
        schedule="constant",
        weight_decay=0.0,
        mixed_precision="none",
        run_dir=run_dir,
        export=False,
        log_format="json",
    )
    result = fit(config, resume=False)
    again = evaluate(run_dir)
    print(
        json.dumps(
            {
                "metrics": result.metrics,
                "evaluate": again,
                "history": result.history,
                "best_val_loss": _best_checkpoint_val_loss(run_dir),
            }
        )
    )


def _best_checkpoint_val_loss(run_dir):
    """The validation loss of `checkpoints/best.keras` (same data as fit's
    validation set)."""
    import os

    import keras

    model = keras.saving.load_model(
        os.path.join(run_dir, "checkpoints", "best.keras")
    )
    x, y = counting_images(256, seed=1)
    predicted = np.asarray(model.predict(x, verbose=0)).ravel()
    return float(np.mean((predicted - y) ** 2))


if __name__ == "__main__":
    main(sys.argv[1])
