"""A third task that exists only in the test suite: counting bright squares.

Images of 0-4 white squares on black; the model regresses the count. It
is registered with `register_task` and `register_model` from outside the
library and then trained, evaluated and picked by a "min" checkpoint
monitor through the library's own `fit` and `evaluate`, and exported by
`kerascnn export` with its own SavedModel signature (`images` ->
`count`, `rounded`) and ONNX outputs (`count`), its own verification
examples and score (rounded count accuracy), which proves the task
seam: nothing in kerascnn knows this task.

Run as a script (a fresh process, so the registrations do not leak into
other tests):

    python -m tests.tasks.counting fit RUN_DIR       # prints JSON
    python -m tests.tasks.counting kerascnn ARGS...  # the CLI, with the
                                                     # task registered
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
            "accuracy": count_accuracy(predicted, y),
            "mae": float(np.mean(np.abs(predicted - y))),
            "num_examples": len(y),
        }

    # --- Export: images in, the count out ---

    def add_serving_signatures(self, archive, model, meta):
        import tensorflow as tf

        shape = tuple(model.input_shape[1:])

        def count(images):
            value = tf.reshape(
                tf.cast(model(images, training=False), tf.float32), [-1]
            )
            return {"count": value, "rounded": tf.round(value)}

        archive.add_endpoint(
            "serving_default",
            count,
            input_signature=[
                tf.TensorSpec((None, *shape), tf.float32, name="images")
            ],
        )

    def verification_examples(self, meta, count, data_dir):
        x, y = counting_images(count, seed=2)
        return x, y, "test"

    def compared_outputs(self, outputs):
        """The count, `(N,)`, in any runtime: Keras' `(N, 1)` array, the
        SavedModel's `count` (its `rounded` is not compared), TFLite's
        one output."""
        if isinstance(outputs, dict):
            outputs = outputs.get("count", next(iter(outputs.values())))
        return np.asarray(outputs).reshape(-1), None

    def verification_scores(self, outputs, labels, inputs):
        return {"accuracy": count_accuracy(outputs, labels)}

    def named_outputs(self, outputs, inputs, meta):
        """ONNX / OpenVINO: `images` -> `count`."""
        import tensorflow as tf

        return {"count": tf.reshape(tf.cast(outputs, tf.float32), [-1])}

    def card_limitations(self, meta):
        return ["Counts 0-4 white 2x2 squares on a black 16x16 image."]


def count_accuracy(predicted, counts):
    """The share of images whose rounded predicted count is right."""
    return float(np.mean(np.round(predicted) == np.asarray(counts)))


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


def run_cli(args):
    """`kerascnn ARGS` in this process, where the task is registered."""
    from cli.main import cli

    cli.main(args, prog_name="kerascnn")


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    if command == "fit":
        main(*rest)
    elif command == "kerascnn":
        run_cli(rest)
    else:
        sys.exit("usage: python -m tests.tasks.counting fit|kerascnn ...")
